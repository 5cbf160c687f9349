using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Hull.Cdi;
using Hull.Runtime.Spec;

namespace Hull.Bench.Cdi;

/// <summary>
/// What CDI adds to CreateContainer: the devices a container asks for (CRI field plus cdi.k8s.io annotations) resolved
/// against a registry holding 200 spec files (in memory; nothing is read per call except the lstat of each host device
/// node) and applied to a built OCI spec. 0 devices is the cost every container pays; 4 devices come from two specs, two
/// through the CRI field and two through an annotation. Refresh is the cost of reading all 200 files again after a change.
/// A short in-process job: `Hull.Bench.Cdi [--filter *]`; `Hull.Bench.Cdi cpu [calls]` prints CPU time per call instead.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["cpu", ..])
        {
            CpuTime(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20_000);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args.Length == 0 ? ["--filter", "*"] : args,
            DefaultConfig.Instance.AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
                    .WithWarmupCount(3).WithIterationCount(10).WithLaunchCount(1))
                .AddColumn(StatisticColumn.Median, StatisticColumn.P95));
    }

    // Process CPU time per call (user + system), which a busy machine inflates far less than wall-clock time.
    private static void CpuTime(int calls)
    {
        var bench = new CdiResolveBenchmarks();
        bench.Setup();
        try
        {
            foreach (var (name, call) in new (string, Func<object>)[] { ("NoDevices", bench.NoDevices), ("FourDevices", bench.FourDevices) })
            {
                for (int i = 0; i < calls / 10; i++) call();
                var samples = new double[5];
                for (int round = 0; round < samples.Length; round++)
                {
                    var before = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
                    for (int i = 0; i < calls; i++) call();
                    samples[round] = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - before).TotalMicroseconds / calls;
                }
                Array.Sort(samples);
                Console.WriteLine($"{name}: {samples[samples.Length / 2]:F2} µs CPU per call (median of {samples.Length} rounds of {calls})");
            }
        }
        finally
        {
            bench.Cleanup();
        }
    }
}

[MemoryDiagnoser]
public class CdiResolveBenchmarks
{
    public const int SpecFiles = 200, DevicesPerSpec = 4;

    private string _dir = "";
    private CdiRegistry _registry = null!;
    private OciSpec _spec = null!;
    private readonly Dictionary<string, string> _plainAnnotations = new()
    {
        ["io.kubernetes.cri.container-type"] = "container",
        ["io.kubernetes.pod.name"] = "web-0",
        ["io.kubernetes.pod.namespace"] = "default",
    };
    private Dictionary<string, string> _cdiAnnotations = null!;
    private readonly string[] _criDevices = ["vendor17.example.com/gpu=dev0", "vendor17.example.com/gpu=dev1"];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("hull-bench-cdi-").FullName;
        for (int i = 0; i < SpecFiles; i++)
            File.WriteAllText(Path.Combine(_dir, $"vendor{i}.yaml"), Spec(i));
        _registry = new CdiRegistry(new CdiRegistryOptions { SpecDirectories = [_dir], Watch = false });
        if (_registry.Current.Errors.Count > 0 || _registry.Current.Devices.Count != SpecFiles * DevicesPerSpec)
            throw new InvalidOperationException($"bench specs: {string.Join("; ", _registry.Current.Errors)}");
        _cdiAnnotations = new(_plainAnnotations) { ["cdi.k8s.io/vendor123_gpu"] = "vendor123.example.com/gpu=dev2,vendor123.example.com/gpu=dev3" };
        _spec = new OciSpec
        {
            Process = new OciProcess { Args = ["/bin/app"], Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=web-0"] },
            Root = new OciRoot { Path = "/rootfs" },
            Mounts = ContainerMounts.Defaults(privileged: false),
            Linux = new OciLinux { Resources = new OciResources { Devices = [new OciDeviceCgroup { Allow = false, Access = "rwm" }] } },
        };
    }

    // A vendor spec as driver tool kits write them: spec-wide env, libraries and a hook; per device a node and its env.
    private static string Spec(int i) =>
        $"cdiVersion: 0.5.0\nkind: vendor{i}.example.com/gpu\ncontainerEdits:\n  env: [VENDOR{i}_DRIVER=1.0]\n" +
        $"  mounts:\n    - {{hostPath: /usr/lib/vendor{i}/libgpu.so, containerPath: /usr/lib/libgpu.so, options: [ro, nosuid, nodev, bind]}}\n" +
        $"    - {{hostPath: /usr/bin/vendor{i}-smi, containerPath: /usr/bin/vendor-smi, options: [ro, nosuid, nodev, bind]}}\n" +
        $"  hooks:\n    - {{hookName: createContainer, path: /usr/bin/vendor-ctk, args: [vendor-ctk, hook, update-ldcache]}}\n" +
        "devices:\n" + string.Concat(Enumerable.Range(0, DevicesPerSpec).Select(d =>
            $"  - name: dev{d}\n    containerEdits:\n      env: [VISIBLE_DEVICE_{d}=1]\n      deviceNodes:\n        - {{path: /dev/vendor-gpu{d}, hostPath: /dev/null}}\n"));

    [GlobalCleanup]
    public void Cleanup()
    {
        _registry.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public OciSpec NoDevices() => CdiEdits.Apply(_spec, _registry.Resolve(CdiRequest.Devices([], _plainAnnotations)));

    [Benchmark]
    public OciSpec FourDevices() => CdiEdits.Apply(_spec, _registry.Resolve(CdiRequest.Devices(_criDevices, _cdiAnnotations)));

    [Benchmark]
    public CdiSnapshot Refresh200Specs() => _registry.Refresh();
}
