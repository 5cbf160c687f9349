using System.Text;

namespace Hull.Core.Deprecations;

/// <summary>
/// The condition that says whether the node uses deprecated features: one type, status, reason and message, reported
/// both among the CRI runtime conditions (Status) and on the Kubernetes Node (the node-condition reporter), so
/// <c>crictl info</c>, <c>hullctl info</c> and <c>kubectl get node</c> agree.
/// </summary>
/// <remarks>
/// containerd 2.0 calls its condition <c>ContainerdHasNoDeprecationWarnings</c>, which the kubelet drops
/// (kubernetes#123148), so it never reaches the Node. Hull publishes its own on the Node, and a name that is the same
/// for any runtime lets upgrade tooling look for one condition type on every node; Hull uses it in CRI Status too so
/// that there is one name to learn.
/// </remarks>
public static class DeprecationCondition
{
    public const string Type = "ContainerRuntimeHasNoDeprecations";
    public const string NoneReason = "NoDeprecations";
    public const string InUseReason = "DeprecatedFeaturesInUse";

    /// <summary>
    /// Longest message Hull puts in a condition: the API's limit on condition messages (metav1.Condition's 32768
    /// characters; NodeCondition declares none, so Hull keeps to the one the API conventions set).
    /// </summary>
    public const int MessageLimit = 32768;

    /// <summary>The warnings that count: all recorded ones except the IDs in <c>ignore_deprecation_warnings</c>.</summary>
    public static IReadOnlyList<DeprecationWarning> Active(IEnumerable<DeprecationWarning> warnings, IEnumerable<string> ignored)
    {
        var skip = ignored.ToHashSet(StringComparer.Ordinal);
        return warnings.Where(w => !skip.Contains(w.Id)).OrderBy(w => w.Id, StringComparer.Ordinal).ToArray();
    }

    /// <summary>The condition for these (already filtered) warnings, with the message as the Node shows it.</summary>
    public static DeprecationConditionState Evaluate(IReadOnlyList<DeprecationWarning> active, int messageLimit = MessageLimit) =>
        active.Count == 0
            ? new DeprecationConditionState(true, NoneReason, "No deprecated features are in use.", [])
            : new DeprecationConditionState(false, InUseReason, Message(active, messageLimit), active.Select(w => w.Id).ToArray());

    /// <summary>
    /// "N deprecated features in use: [ID] text; [ID] text". Whole entries are left out from the end when it would
    /// exceed <paramref name="limit"/>, and the message then says how many (the count stays exact).
    /// </summary>
    public static string Message(IReadOnlyList<DeprecationWarning> active, int limit = MessageLimit)
    {
        var text = new StringBuilder(active.Count == 1 ? "1 deprecated feature in use: " : $"{active.Count} deprecated features in use: ");
        for (int i = 0; i < active.Count; i++)
        {
            string entry = (i > 0 ? "; " : "") + Entry(active[i]);
            int after = active.Count - i - 1;
            // This entry must leave room for the note that says how many follow, if any do.
            if (text.Length + entry.Length + (after > 0 ? Omitted(after, first: false).Length : 0) > limit)
                return Fit(text.Append(Omitted(active.Count - i, first: i == 0)).ToString(), limit);
            text.Append(entry);
        }
        return Fit(text.ToString(), limit);
    }

    /// <summary>One warning as the condition message and the Node event show it.</summary>
    public static string Entry(DeprecationWarning warning) => $"[{warning.Id}] {warning.Message}";

    private static string Omitted(int count, bool first) => $"{(first ? "" : "; ")}{count} more not shown (hullctl deprecations list)";

    private static string Fit(string text, int limit) => text.Length <= limit ? text : limit < 3 ? text[..limit] : text[..(limit - 3)] + "...";
}

/// <summary>The deprecation condition's value.</summary>
/// <param name="NoDeprecations">The condition's status: true when no counted warning exists.</param>
/// <param name="Ids">The IDs of the counted warnings, in ID order.</param>
public sealed record DeprecationConditionState(bool NoDeprecations, string Reason, string Message, IReadOnlyList<string> Ids);
