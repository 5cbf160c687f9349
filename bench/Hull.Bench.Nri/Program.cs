using System.Diagnostics;
using Hull.Nri;
using Hull.Runtime.Spec;
using Microsoft.Extensions.Logging.Abstractions;

// Measures what NRI adds to one lifecycle event: StartContainer (a notification) and CreateContainer (with
// adjustment merging) relayed to 0, 1 and 3 pre-installed upstream logger plugins subscribed to every event.
// Stopwatch-based: each sample is one awaited event, after a warm-up.
string pluginDir = args.Length > 0 ? args[0] : "/usr/local/lib/hull-test-tools/nri-plugins/v0.12.2";
int events = args.Length > 1 ? int.Parse(args[1]) : 2000;
string logger = Path.Combine(pluginDir, "logger");
if (!File.Exists(logger))
{
    Console.Error.WriteLine($"{logger} not found; run ../shared/tools/install.sh");
    return 2;
}

var pod = new NriPod { Id = "pod", Name = "pod", Uid = "uid", Namespace = "default" };
var container = new NriContainer
{
    Id = "ctr", PodSandboxId = "pod", Name = "ctr", State = NriContainerState.Created,
    Spec = new OciSpec { Process = new OciProcess { Args = ["sh"], Env = ["PATH=/bin"] } },
};

Console.WriteLine($"| plugins | event | p50 (ms) | p99 (ms) | per plugin p50 (ms) |");
Console.WriteLine($"| --- | --- | --- | --- | --- |");
foreach (int plugins in new[] { 0, 1, 3 })
{
    var root = Directory.CreateTempSubdirectory("hull-nri-bench-").FullName;
    try
    {
        var pluginPath = Path.Combine(root, "plugins");
        Directory.CreateDirectory(pluginPath);
        for (int i = 0; i < plugins; i++)
        {
            var script = Path.Combine(pluginPath, $"{10 + i}-logger{i}");
            // The logger's output goes to a file, as a node would configure it; /dev/null keeps the disk out of the numbers.
            File.WriteAllText(script, $"#!/bin/sh\nexec '{logger}' -log-file /dev/null\n");
            File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        }
        await using var host = new NriHost(new NriOptions { PluginPath = pluginPath, PluginConfigPath = root, DisableConnections = true },
            NullLogger.Instance);
        await host.StartAsync(new NoRuntime(), CancellationToken.None);
        if (host.ListPlugins().Count != plugins) throw new InvalidOperationException($"{host.ListPlugins().Count} of {plugins} plugins connected");

        foreach (var (name, run) in new (string, Func<Task>)[]
        {
            ("StartContainer", () => host.StartContainerAsync(pod, container)),
            ("CreateContainer", () => host.CreateContainerAsync(pod, container)),
        })
        {
            for (int i = 0; i < 200; i++) await run();
            var samples = new double[events];
            for (int i = 0; i < events; i++)
            {
                long start = Stopwatch.GetTimestamp();
                await run();
                samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            Array.Sort(samples);
            double p50 = samples[events / 2], p99 = samples[(int)(events * 0.99)];
            Console.WriteLine($"| {plugins} | {name} | {p50:0.000} | {p99:0.000} | {(plugins == 0 ? "-" : (p50 / plugins).ToString("0.000"))} |");
        }
    }
    finally
    {
        Directory.Delete(root, recursive: true);
    }
}
return 0;

sealed class NoRuntime : INriRuntime
{
    public Task<NriSnapshot> SnapshotAsync(CancellationToken cancellationToken) => Task.FromResult(new NriSnapshot([], []));

    public Task<IReadOnlyList<NriContainerUpdate>> UpdateContainersAsync(IReadOnlyList<NriContainerUpdate> updates,
        IReadOnlyList<NriContainerEviction> evictions, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<NriContainerUpdate>>([]);
}
