using System.Diagnostics;
using System.Globalization;
using System.Xml.Linq;
using Hull.Grpc.Tests.Grpc;
using Xunit.Abstractions;

namespace Hull.Grpc.Tests.Conformance;

/// <summary>
/// h2spec (summerwind/h2spec v2.6.0), the HTTP/2 conformance suite, against Hull.Grpc on loopback TCP (h2spec dials
/// TCP only). It lives with the unit tests rather than the e2e tests because it needs neither root nor hulld: the
/// transport is what it checks, and an in-process server gives the cleanest view of it. 1–5 s.
/// </summary>
public class H2SpecTests(ITestOutputHelper output)
{
    /// <summary>Cases in h2spec v2.6.0, strict ones (-S) included.</summary>
    private const int CaseCount = 147;

    /// <summary>
    /// Cases that do not apply to a gRPC-only server, keyed "section: description" as h2spec names them, each with
    /// the RFC section and why. h2spec's requests are not gRPC calls; the server answers them with 415 and a short
    /// text body once the request has ended, which is enough for every case today, so the list is empty. A case
    /// listed here that starts to pass fails the test too, so the list cannot go stale.
    /// </summary>
    private static readonly Dictionary<string, string> NotApplicable = new();

    [ToolFact("h2spec")]
    public async Task EveryH2SpecCasePassesExceptThoseThatDoNotApplyToAGrpcServer()
    {
        await using var server = TestServer.Start();
        var report = Path.Combine(Path.GetTempPath(), $"h2spec-{Guid.NewGuid():N}.xml");
        try
        {
            var h2spec = TestTools.Find("h2spec") ?? throw new Xunit.Sdk.XunitException(
                $"h2spec is not installed; hack/install-deps.sh unpacks it into {TestTools.Directory}");
            var (exitCode, log) = await RunAsync(h2spec,
                ["-h", server.EndPoint.Address.ToString(), "-p", server.EndPoint.Port.ToString(CultureInfo.InvariantCulture),
                 "-S", "-o", "5", "-j", report]);
            output.WriteLine(log);
            Assert.True(File.Exists(report), $"h2spec wrote no report (exit code {exitCode})");

            var cases = XDocument.Load(report).Descendants("testcase").ToList();
            Assert.Equal(CaseCount, cases.Count);
            var failed = new Dictionary<string, string>();
            foreach (var c in cases)
            {
                var problem = c.Elements().FirstOrDefault(e => e.Name.LocalName is "failure" or "error" or "skipped");
                if (problem is null) continue;
                string key = $"{c.Attribute("package")?.Value}: {c.Attribute("classname")?.Value}";
                failed[key] = $"{problem.Name.LocalName} {problem.Value.Trim()}";
            }
            var unexpected = failed.Where(f => !NotApplicable.ContainsKey(f.Key)).Select(f => $"{f.Key} ({f.Value})").ToList();
            var stale = NotApplicable.Keys.Where(k => !failed.ContainsKey(k)).ToList();
            Assert.True(unexpected.Count == 0, "h2spec cases failed:\n" + string.Join("\n", unexpected));
            Assert.True(stale.Count == 0, "listed as not applicable but passed (remove them from the list):\n" + string.Join("\n", stale));
            Assert.Equal(0, server.Service.Calls); // h2spec never makes a gRPC call
            await server.AssertServesAsync();
        }
        finally
        {
            File.Delete(report);
        }
    }

    private static async Task<(int ExitCode, string Log)> RunAsync(string tool, string[] arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {tool}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        }
        catch (TimeoutException)
        {
            process.Kill();
            throw new Xunit.Sdk.XunitException($"{tool} did not finish within 3 minutes:\n{await stdout}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
