using System.Diagnostics;
using Hull.Nri;
using Hull.Runtime.Spec;
using Microsoft.Extensions.Logging.Abstractions;

// The per-event NRI round trip: what one lifecycle event costs with 0, 1 and 3 pre-installed upstream plugins
// (default: the logger, subscribed to every event) connected to an NriHost, the object hulld relays events with.
// Three hosts run side by side and take turns, round after round (0, 1, 3, 0, 1, 3, ...), so that the noise of a
// shared machine falls on every setting alike. Per round and host: a warm-up, then EVENTS samples of each event.
//   Hull.Bench.Nri [--plugin-dir DIR] [--plugin NAME] [--events N] [--rounds N] [--gap MS]
// --gap pauses between samples, as events come in a node (back to back, the plugin's threads never sleep).
// Events: StartContainer (one notification), CreateContainer (the create call, then ValidateContainerAdjustment:
// the logger subscribes to both) and "Create+Start", the four events of a CRI CreateContainer + StartContainer
// (CreateContainer, PostCreateContainer, StartContainer, PostStartContainer). "added per plugin" is
// (p50 with N plugins - p50 with none) / N.
var options = Args.Parse(args);
string plugin = Path.Combine(options.PluginDir, options.Plugin);
if (!File.Exists(plugin))
{
    Console.Error.WriteLine($"{plugin} not found; run ../shared/tools/install.sh");
    return 2;
}

var pod = new NriPod { Id = "pod", Name = "pod", Uid = "uid", Namespace = "default" };
var container = new NriContainer
{
    Id = "ctr", PodSandboxId = "pod", Name = "ctr", State = NriContainerState.Created,
    Spec = new OciSpec { Process = new OciProcess { Args = ["sh"], Env = ["PATH=/bin"] } },
};
(string Name, Func<NriHost, Task> Run)[] events =
[
    ("StartContainer", h => h.StartContainerAsync(pod, container)),
    ("CreateContainer", h => h.CreateContainerAsync(pod, container)),
    ("Create+Start", async h =>
    {
        await h.CreateContainerAsync(pod, container);
        await h.PostCreateContainerAsync(pod, container);
        await h.StartContainerAsync(pod, container);
        await h.PostStartContainerAsync(pod, container);
    }),
];
int[] settings = [0, 1, 3];

string Load() => File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Aggregate((a, b) => $"{a} {b}");
Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPUs, plugin {plugin}, {options.Rounds} rounds x {options.Events} events, {options.Gap} ms between events, load average {Load()}");

var roots = new List<string>();
var hosts = new Dictionary<int, NriHost>();
var samples = settings.ToDictionary(n => n, _ => events.ToDictionary(e => e.Name, _ => new List<double>()));
try
{
    foreach (int n in settings)
    {
        var root = Directory.CreateTempSubdirectory("hull-nri-bench-").FullName;
        roots.Add(root);
        var pluginPath = Path.Combine(root, "plugins");
        Directory.CreateDirectory(pluginPath);
        for (int i = 0; i < n; i++)
        {
            var script = Path.Combine(pluginPath, $"{10 + i}-{options.Plugin}{i}");
            // The logger's output goes to a file, as a node would configure it; /dev/null keeps the disk out of the numbers.
            File.WriteAllText(script, $"#!/bin/sh\nexec '{plugin}'{(options.Plugin == "logger" ? " -log-file /dev/null" : "")}\n");
            File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        }
        var host = new NriHost(new NriOptions { PluginPath = pluginPath, PluginConfigPath = root, DisableConnections = true }, NullLogger.Instance);
        hosts[n] = host;
        await host.StartAsync(new NoRuntime(), CancellationToken.None);
        if (host.ListPlugins().Count != n) throw new InvalidOperationException($"{host.ListPlugins().Count} of {n} plugins connected");
    }

    for (int round = 0; round < options.Rounds; round++)
        foreach (int n in settings)
            foreach (var (name, run) in events)
            {
                for (int i = 0; i < options.Events / 10; i++) await run(hosts[n]);
                for (int i = 0; i < options.Events; i++)
                {
                    if (options.Gap > 0) await Task.Delay(options.Gap);
                    long start = Stopwatch.GetTimestamp();
                    await run(hosts[n]);
                    samples[n][name].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }
}
finally
{
    foreach (var host in hosts.Values) await host.DisposeAsync();
    foreach (var root in roots) Directory.Delete(root, recursive: true);
}

double Percentile(List<double> values, double p)
{
    var sorted = values.Order().ToArray();
    return sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];
}

Console.WriteLine($"# load average at the end {Load()}");
Console.WriteLine("| event | plugins | p50 (ms) | p99 (ms) | added per plugin, p50 (ms) |");
Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
foreach (var (name, _) in events)
    foreach (int n in settings)
    {
        double p50 = Percentile(samples[n][name], 0.5), p99 = Percentile(samples[n][name], 0.99);
        string added = n == 0 ? "-" : ((p50 - Percentile(samples[0][name], 0.5)) / n).ToString("0.000");
        Console.WriteLine($"| {name} | {n} | {p50:0.000} | {p99:0.000} | {added} |");
    }
return 0;

sealed record Args(string PluginDir, string Plugin, int Events, int Rounds, int Gap)
{
    public static Args Parse(string[] args)
    {
        var parsed = new Args("/usr/local/lib/hull-test-tools/nri-plugins/v0.12.2", "logger", 500, 2, 0);
        for (int i = 0; i + 1 < args.Length; i += 2)
            parsed = args[i] switch
            {
                "--plugin-dir" => parsed with { PluginDir = args[i + 1] },
                "--plugin" => parsed with { Plugin = args[i + 1] },
                "--events" => parsed with { Events = int.Parse(args[i + 1]) },
                "--rounds" => parsed with { Rounds = int.Parse(args[i + 1]) },
                "--gap" => parsed with { Gap = int.Parse(args[i + 1]) },
                _ => throw new ArgumentException($"unknown argument {args[i]} (--plugin-dir DIR, --plugin NAME, --events N, --rounds N, --gap MS)"),
            };
        return parsed;
    }
}

sealed class NoRuntime : INriRuntime
{
    public Task<NriSnapshot> SnapshotAsync(CancellationToken cancellationToken) => Task.FromResult(new NriSnapshot([], []));

    public Task<IReadOnlyList<NriContainerUpdate>> UpdateContainersAsync(IReadOnlyList<NriContainerUpdate> updates,
        IReadOnlyList<NriContainerEviction> evictions, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<NriContainerUpdate>>([]);
}
