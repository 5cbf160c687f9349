using Hull.Core.Deprecations;

namespace Hull.Core.Tests.Deprecations;

public sealed class DeprecationConditionTests
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static DeprecationWarning Warning(string id, string message = "text") => new(id, message, T0, 1);

    [Fact]
    public void No_counted_warning_is_True_with_reason_NoDeprecations()
    {
        var state = DeprecationCondition.Evaluate(DeprecationCondition.Active([Warning("a")], ["a"]));
        Assert.True(state.NoDeprecations);
        Assert.Equal("NoDeprecations", state.Reason);
        Assert.Empty(state.Ids);
        Assert.Equal("ContainerRuntimeHasNoDeprecations", DeprecationCondition.Type);
    }

    [Fact]
    public void Warnings_make_it_False_listing_each_id_and_text_in_id_order_without_the_ignored_ones()
    {
        var active = DeprecationCondition.Active([Warning("z/two", "second"), Warning("ignored"), Warning("a/one", "first")], ["ignored"]);
        var state = DeprecationCondition.Evaluate(active);
        Assert.False(state.NoDeprecations);
        Assert.Equal("DeprecatedFeaturesInUse", state.Reason);
        Assert.Equal(["a/one", "z/two"], state.Ids);
        Assert.Equal("2 deprecated features in use: [a/one] first; [z/two] second", state.Message);
    }

    [Fact]
    public void A_message_over_the_limit_keeps_whole_entries_and_says_how_many_are_left_out()
    {
        var warnings = Enumerable.Range(0, 50).Select(i => Warning($"id/{i:D2}", new string('x', 40))).ToArray();
        string message = DeprecationCondition.Message(warnings, limit: 300);
        Assert.True(message.Length <= 300, message);
        Assert.StartsWith("50 deprecated features in use: [id/00] ", message);
        int shown = message.Split("; [").Length;
        Assert.EndsWith($"; {50 - shown} more not shown (hullctl deprecations list)", message);
        Assert.DoesNotContain("...", message);
    }

    [Fact]
    public void A_first_entry_longer_than_the_limit_still_gives_the_count()
    {
        string message = DeprecationCondition.Message([Warning("long", new string('x', 500)), Warning("b")], limit: 100);
        Assert.Equal("2 deprecated features in use: 2 more not shown (hullctl deprecations list)", message);
    }

    [Fact]
    public void The_default_limit_is_the_APIs_for_condition_messages()
    {
        var warnings = Enumerable.Range(0, 400).Select(i => Warning($"io.containerd.deprecation/{i}", new string('y', 200))).ToArray();
        string message = DeprecationCondition.Evaluate(warnings).Message;
        Assert.InRange(message.Length, 30000, 32768);
        Assert.Contains("more not shown", message);
    }

    [Fact]
    public void The_registry_tells_listeners_of_each_recording()
    {
        var registry = new DeprecationRegistry(null, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var seen = new List<string>();
        registry.Recorded += w => seen.Add($"{w.Id}#{w.Occurrences}");
        registry.Record(DeprecationIds.ConfigVersion2);
        registry.Record(DeprecationIds.ConfigVersion2);
        Assert.Equal([$"{DeprecationIds.ConfigVersion2}#1", $"{DeprecationIds.ConfigVersion2}#2"], seen);
    }
}
