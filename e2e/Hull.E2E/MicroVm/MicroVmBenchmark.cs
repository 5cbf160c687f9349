using Grpc.Core;
using System.Diagnostics;
using System.Globalization;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Xunit.Abstractions;

namespace Hull.E2E.MicroVm;

/// <summary>
/// Pod start time and host memory per pod, microvm against podsandbox, through hulld's CRI socket. A start is
/// RunPodSandbox, then CreateContainer + StartContainer of busybox <c>echo started</c> until that line is in the CRI
/// log (what a user waits for). Memory is what the pod's own processes hold on the host: qemu's RSS and PSS for a
/// microVM pod; for a podsandbox pod nothing (no infra process unless the pod shares its PID namespace). In CI one
/// round per handler checks it all works (about 40 s); with HULL_MICROVM_BENCH=1 it runs
/// HULL_MICROVM_BENCH_ROUNDS (default 5) alternating rounds and prints the table for docs/benchmarks.md.
/// </summary>
public sealed class MicroVmBenchmark(PushedTestImages pushed, ITestOutputHelper log) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(180);

    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd, "runc", "conmon", "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter", "tc", "ip", "iptables-save",
        "docker-registry", "skopeo", "umoci")]
    public async Task MicroVmBenchmark_pod_start_time_and_host_memory_against_podsandbox()
    {
        bool bench = Environment.GetEnvironmentVariable("HULL_MICROVM_BENCH") == "1";
        int rounds = bench ? int.Parse(Environment.GetEnvironmentVariable("HULL_MICROVM_BENCH_ROUNDS") ?? "5", CultureInfo.InvariantCulture) : 1;
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry, """
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.microvm]
              runtime_type = 'io.containerd.runc.v2'
              sandboxer = 'microvm'
            """);
        var image = pushed.Images.Busybox.Reference;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } }, deadline: CriClient.In(Long));

        var samples = new Dictionary<string, List<Sample>> { ["runc"] = [], ["microvm"] = [] };
        for (int round = 0; round < rounds; round++)
            foreach (var handler in new[] { "runc", "microvm" })
            {
                var sample = await StartPodAsync(env, handler, image, $"bench-{handler}-{round}");
                samples[handler].Add(sample);
                log.WriteLine($"{handler} round {round}: RunPodSandbox {sample.RunPod.TotalMilliseconds:F0} ms, to first output {sample.ToOutput.TotalMilliseconds:F0} ms, " +
                    $"RSS {sample.RssBytes / 1048576.0:F1} MiB, PSS {sample.PssBytes / 1048576.0:F1} MiB");
            }

        var accel = env.Hulld.Log.Contains("microVMs run under kvm", StringComparison.Ordinal) ? "kvm" : "tcg";
        log.WriteLine($"| handler | RunPodSandbox p50 | to first output p50 | host memory per pod (RSS / PSS) |");
        log.WriteLine($"|---|---|---|---|");
        foreach (var (handler, list) in samples)
            log.WriteLine($"| {(handler == "runc" ? "podsandbox (runc)" : $"microvm ({accel})")} | {Median(list, s => s.RunPod.TotalMilliseconds):F0} ms " +
                $"| {Median(list, s => s.ToOutput.TotalMilliseconds):F0} ms | {Median(list, s => s.RssBytes) / 1048576.0:F1} MiB / {Median(list, s => s.PssBytes) / 1048576.0:F1} MiB |");
        Assert.All(samples["runc"], s => Assert.Equal(0, s.RssBytes));
        Assert.All(samples["microvm"], s => Assert.True(s.RssBytes > 32L << 20, $"qemu RSS {s.RssBytes}"));
    }

    private sealed record Sample(TimeSpan RunPod, TimeSpan ToOutput, long RssBytes, long PssBytes);

    private static async Task<Sample> StartPodAsync(PodTestEnvironment env, string handler, string image, string name)
    {
        var podConfig = PodTestEnvironment.PodConfig(name);
        podConfig.LogDirectory = Path.Combine(env.Dir, "logs", name);
        var clock = Stopwatch.StartNew();
        var pod = await env.RunPodAsync(podConfig, handler);
        var runPod = clock.Elapsed;
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "app" },
            Image = new ImageSpec { Image = image },
            LogPath = "app/0.log",
            Command = { "/bin/sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 1; done" },
        };
        var id = (await env.Cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
        await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        var logPath = Path.Combine(podConfig.LogDirectory, "app", "0.log");
        while (!(File.Exists(logPath) && (await File.ReadAllTextAsync(logPath)).Contains("started", StringComparison.Ordinal)))
        {
            if (clock.Elapsed > Long) throw new TimeoutException($"{name}: no output after {Long}");
            await Task.Delay(20);
        }
        var toOutput = clock.Elapsed;
        var (rss, pss) = handler == "microvm" ? QemuMemory(env.Dir) : (0L, 0L);
        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
        return new Sample(runPod, toOutput, rss, pss);
    }

    /// <summary>RSS and PSS (smaps_rollup) of the one qemu running under <paramref name="dir"/>.</summary>
    private static (long Rss, long Pss) QemuMemory(string dir)
    {
        var pid = MicroVmTestSupport.QemuProcessesUsing(dir).Single();
        long Field(string name) => long.Parse(File.ReadLines($"/proc/{pid}/smaps_rollup").First(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return (Field("Rss"), Field("Pss"));
    }

    private static double Median(List<Sample> list, Func<Sample, double> value)
    {
        var sorted = list.Select(value).Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
