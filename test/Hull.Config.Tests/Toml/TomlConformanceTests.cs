using System.Text;
using System.Text.Json;
using Hull.Config.TomlFiles;
using Tomlyn.Parsing;

namespace Hull.Config.Tests.Toml;

/// <summary>
/// toml-test's TOML 1.0.0 cases, each its own theory row, read the way hulld reads its config file
/// (<see cref="ConfigLoader.ReadDocument"/>: UTF-8, Tomlyn's validating syntax parser, Hull's TOML 1.0 checks).
/// </summary>
public sealed class TomlConformanceTests
{
    private const string Toml10Reason =
        "Hull rejects it: containerd reads its config with a TOML 1.0 parser, and a config Hull accepts must still load when the node goes back to containerd.";

    /// <summary>
    /// The TOML 1.0 invalid cases that Tomlyn, a TOML 1.1 parser, accepts, each with what Hull does about it. The
    /// reverse does not occur in the suite: Tomlyn accepts every valid case. (It does reject some valid TOML 1.0 that
    /// the suite does not cover; see <see cref="TomlReadingTests.Date_times_that_a_DateTimeOffset_cannot_hold_are_rejected"/>.)
    /// </summary>
    public static readonly Dictionary<string, string> AcceptedOnlyByToml11 = new()
    {
        ["invalid/datetime/no-secs"] = "TOML 1.1 makes the seconds of a time optional. " + Toml10Reason,
        ["invalid/local-datetime/no-secs"] = "TOML 1.1 makes the seconds of a time optional. " + Toml10Reason,
        ["invalid/local-time/no-secs"] = "TOML 1.1 makes the seconds of a time optional. " + Toml10Reason,
        ["invalid/inline-table/linebreak-01"] = "TOML 1.1 lets inline tables span lines. " + Toml10Reason,
        ["invalid/inline-table/linebreak-02"] = "TOML 1.1 lets inline tables span lines. " + Toml10Reason,
        ["invalid/inline-table/linebreak-03"] = "TOML 1.1 lets inline tables span lines. " + Toml10Reason,
        ["invalid/inline-table/linebreak-04"] = "TOML 1.1 lets inline tables span lines. " + Toml10Reason,
        ["invalid/inline-table/trailing-comma"] = "TOML 1.1 allows a trailing comma in inline tables. " + Toml10Reason,
        ["invalid/string/basic-byte-escapes"] = "TOML 1.1 adds the \\xHH escape. " + Toml10Reason,
    };

    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    public static TheoryData<string> ValidCases => new(TomlTestSuite.Cases("valid"));

    public static TheoryData<string> InvalidCases => new(TomlTestSuite.Cases("invalid"));

    public static TheoryData<string> Toml11Cases => new(AcceptedOnlyByToml11.Keys);

    [Fact]
    public void SuiteDataIsPresent()
    {
        Assert.True(TomlTestSuite.Root is not null, $"toml-test conformance data is missing: {TomlTestSuite.Problem}");
        Assert.NotEmpty(TomlTestSuite.Cases("valid"));
        Assert.NotEmpty(TomlTestSuite.Cases("invalid"));
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void ValidCaseLoadsWithTheExpectedValues(string caseName)
    {
        ConfigDocument document = ReadWithTimeout(caseName);

        using JsonDocument expected = JsonDocument.Parse(File.ReadAllBytes(TomlTestSuite.PathOf(caseName, ".json")));
        string? diff = TomlTestJson.Diff(expected.RootElement, document.Root);
        Assert.True(diff is null, $"{caseName}: {diff}");
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void ValidCaseRoundTripsThroughTheWriter(string caseName)
    {
        ConfigDocument document = ReadWithTimeout(caseName);

        string written = TomlText.Write(document.Root);
        ConfigDocument reread;
        try
        {
            reread = ConfigDocument.Parse(written, caseName + " (rewritten)");
        }
        catch (ConfigException ex)
        {
            throw new Xunit.Sdk.XunitException($"the writer produced TOML Hull does not read: {ex.Message}\n---\n{written}");
        }

        string? diff = TomlTreeComparer.Diff(document.Root, reread.Root);
        Assert.True(diff is null, $"{caseName}: {diff}\n---\n{written}");
    }

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public void InvalidCaseIsRejectedNamingTheFile(string caseName)
    {
        string path = TomlTestSuite.PathOf(caseName, ".toml");
        Exception? caught = Run(() => ConfigLoader.ReadDocument(path));

        Assert.True(caught is not null, $"{caseName} was accepted but must be rejected");
        Assert.True(caught is ConfigException, $"{caseName} threw {caught.GetType()} instead of ConfigException: {caught}");
        Assert.StartsWith(path + ":", caught.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exactly_the_listed_invalid_cases_are_accepted_by_Tomlyn_alone()
    {
        var acceptedByTomlyn = TomlTestSuite.Cases("invalid").Where(c => TomlynAccepts(c)).Order().ToList();

        Assert.Equal(AcceptedOnlyByToml11.Keys.Order(), acceptedByTomlyn);
    }

    [Theory]
    [MemberData(nameof(Toml11Cases))]
    public void Toml11_syntax_is_rejected_saying_so(string caseName)
    {
        string path = TomlTestSuite.PathOf(caseName, ".toml");

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.ReadDocument(path));

        Assert.Matches($@"^{System.Text.RegularExpressions.Regex.Escape(path)}:\d+:\d+: .*TOML 1\.1; containerd reads TOML 1\.0", e.Message);
    }

    private static bool TomlynAccepts(string caseName)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(TomlTestSuite.PathOf(caseName, ".toml")));
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        try
        {
            return !SyntaxParser.Parse(text, caseName, validate: true).HasErrors;
        }
        catch (Tomlyn.TomlException)
        {
            return false;
        }
    }

    private static ConfigDocument ReadWithTimeout(string caseName)
    {
        ConfigDocument? document = null;
        Exception? caught = Run(() => document = ConfigLoader.ReadDocument(TomlTestSuite.PathOf(caseName, ".toml")));
        if (caught is not null)
        {
            throw new Xunit.Sdk.XunitException($"{caseName} must load but threw {caught.GetType().Name}: {caught.Message}");
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
