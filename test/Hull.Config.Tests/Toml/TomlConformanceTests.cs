using System.Text.Json;
using Hull.Config.Toml;

namespace Hull.Config.Tests.Toml;

/// <summary>Runs every TOML 1.0.0 case of toml-test; each case is its own theory row.</summary>
public sealed class TomlConformanceTests
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    public static TheoryData<string> ValidCases => new(TomlTestSuite.Cases("valid"));

    public static TheoryData<string> InvalidCases => new(TomlTestSuite.Cases("invalid"));

    [Fact]
    public void SuiteDataIsPresent()
    {
        Assert.True(TomlTestSuite.Root is not null, $"toml-test conformance data is missing: {TomlTestSuite.Problem}");
        Assert.NotEmpty(TomlTestSuite.Cases("valid"));
        Assert.NotEmpty(TomlTestSuite.Cases("invalid"));
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void ValidCaseDecodesToExpectedJson(string caseName)
    {
        string tomlPath = TomlTestSuite.PathOf(caseName, ".toml");
        TomlDocument document = ParseWithTimeout(File.ReadAllBytes(tomlPath), caseName);

        using JsonDocument expected = JsonDocument.Parse(File.ReadAllBytes(TomlTestSuite.PathOf(caseName, ".json")));
        string? diff = TomlTestJson.Diff(expected.RootElement, document.Root);
        Assert.True(diff is null, $"{caseName}: {diff}");
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void ValidCaseRoundTripsThroughWriter(string caseName)
    {
        TomlDocument document = ParseWithTimeout(File.ReadAllBytes(TomlTestSuite.PathOf(caseName, ".toml")), caseName);

        string written = TomlWriter.Write(document);
        TomlDocument reparsed;
        try
        {
            reparsed = TomlParser.Parse(written, caseName + " (rewritten)");
        }
        catch (TomlException ex)
        {
            throw new Xunit.Sdk.XunitException($"writer produced invalid TOML: {ex.Message}\n---\n{written}");
        }

        string? diff = TomlTreeComparer.Diff(document.Root, reparsed.Root);
        Assert.True(diff is null, $"{caseName}: {diff}\n---\n{written}");
    }

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public void InvalidCaseIsRejectedWithTomlException(string caseName)
    {
        byte[] bytes = File.ReadAllBytes(TomlTestSuite.PathOf(caseName, ".toml"));
        Exception? caught = Run(() => TomlParser.ParseUtf8(bytes, caseName));

        Assert.True(caught is not null, $"{caseName} was accepted but must be rejected");
        Assert.True(caught is TomlException, $"{caseName} threw {caught.GetType()} instead of TomlException: {caught}");
        Assert.StartsWith(caseName + ":", caught.Message, StringComparison.Ordinal);
    }

    private static TomlDocument ParseWithTimeout(byte[] bytes, string caseName)
    {
        TomlDocument? document = null;
        Exception? caught = Run(() => document = TomlParser.ParseUtf8(bytes, caseName));
        if (caught is not null)
        {
            throw new Xunit.Sdk.XunitException($"{caseName} must parse but threw {caught.GetType().Name}: {caught.Message}");
        }

        return document!;
    }

    /// <summary>Runs the parser on a worker so a hang fails the case instead of the whole run.</summary>
    private static Exception? Run(Action action)
    {
        Exception? caught = null;
        var task = Task.Run(() =>
        {
            try
            {
                action();
            }
            catch (Exception ex)
            {
                caught = ex;
            }
        });
        Assert.True(task.Wait(CaseTimeout), $"parser did not finish within {CaseTimeout.TotalSeconds}s");
        return caught;
    }
}
