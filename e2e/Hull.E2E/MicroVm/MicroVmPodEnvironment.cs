using System.Net;
using System.Text.Json.Nodes;
using Hull.E2E.Fixtures;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Controller;
using Hull.Sandbox.MicroVm;
using Hull.Sandbox.Namespaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.E2E.MicroVm;

/// <summary>
/// The microvm sandboxer constructed directly (hulld's wiring is tested by <see cref="MicroVmCriTests"/>): its own state directory, a bridge
/// network <c>hullmv&lt;n&gt;</c> on 10.97.&lt;n&gt;.0/24 with the real CNI plugins, and containers whose bundles are made
/// the way CreateContainer makes them (the real spec builder) over a busybox rootfs. Dispose removes every pod and
/// checks nothing is left: no qemu, no TAP, no mount, no pod directory, no IPAM allocation.
/// </summary>
public sealed class MicroVmPodEnvironment : IAsyncDisposable
{
    public static readonly string[] Tools = [MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd,
        "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "nsenter", "ip", "tc", "/bin/busybox"];

    private static int s_next = Random.Shared.Next(0, 200);
    private readonly List<string> _pods = [];

    private MicroVmPodEnvironment(int n, MicroVmTestDirectory dir, MicroVmOptions options)
    {
        N = n;
        Dir = dir;
        Options = options;
        Pinner = new NamespacePinner(dir.StateDirectory);
        Handler = new RuntimeHandler
        {
            Name = HandlerName, Sandboxer = MicroVmSandboxController.SandboxerName, RuntimeBinary = "runc",
            CniConfDir = Path.Combine(dir.Path, "net.d"), Snapshotter = "overlayfs",
        };
        Cni = new CniManagers(new CniOptions { ConfDir = Handler.CniConfDir, BinDirs = ["/usr/lib/cni"], CacheDir = Path.Combine(dir.Path, "cni") },
            NullLoggerFactory.Instance);
        Controller = NewController();
        Specs = new SpecBuilder(new SpecBuilderOptions { TolerateMissingHugetlbController = true }, HostInfo.Detect());
    }

    public int N { get; }
    public MicroVmTestDirectory Dir { get; }
    public const string HandlerName = "microvm";

    public MicroVmOptions Options { get; }
    public RuntimeHandler Handler { get; }
    public NamespacePinner Pinner { get; }
    public CniManagers Cni { get; }
    public MicroVmSandboxController Controller { get; private set; }
    public SpecBuilder Specs { get; }
    public string Bridge => $"hullmv{N}";
    public string IpamDir => Path.Combine(Dir.Path, "ipam");

    public MicroVmSandboxController NewController() => new(
        new MicroVmSandboxOptions { StateDirectory = Dir.StateDirectory, Handlers = new Dictionary<string, MicroVmOptions> { [HandlerName] = Options } },
        new RuntimeHandlers([Handler], HandlerName), Pinner, Cni);

    /// <summary>"hulld restarted": a new controller over the same state; the old one lets go of its connections first.</summary>
    public async Task<MicroVmSandboxController> RestartControllerAsync()
    {
        await Controller.ReleaseUnusedAsync(CancellationToken.None);
        Controller = NewController();
        return Controller;
    }

    public static async Task<MicroVmPodEnvironment> StartAsync(Func<MicroVmOptions, MicroVmOptions>? configure = null)
    {
        int n = 0;
        for (int tries = 0; tries < 250; tries++)
        {
            n = Interlocked.Increment(ref s_next) % 250 + 1;
            if (!Directory.Exists($"/sys/class/net/hullmv{n}")) break;
        }
        var dir = new MicroVmTestDirectory();
        var options = new MicroVmOptions { Accel = MicroVmAccel.Auto };
        var env = new MicroVmPodEnvironment(n, dir, configure?.Invoke(options) ?? options);
        Directory.CreateDirectory(Path.Combine(dir.Path, "net.d"));
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "net.d", "10-microvm.conflist"), new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = env.Bridge,
            ["plugins"] = new JsonArray(new JsonObject
            {
                ["type"] = "bridge",
                ["bridge"] = env.Bridge,
                ["isGateway"] = true,
                ["ipMasq"] = false,
                ["ipam"] = new JsonObject
                {
                    ["type"] = "host-local",
                    ["dataDir"] = env.IpamDir,
                    ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = $"10.97.{n}.0/24" })),
                    ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
                },
            }),
        }.ToJsonString());
        return env;
    }

    public PodSandboxSpec PodSpec(string name) => new()
    {
        Id = Core.Ids.New(),
        Identity = new PodIdentity(name, "e2e", Guid.NewGuid().ToString(), 0),
        RuntimeHandler = HandlerName,
        Hostname = name,
        LogDirectory = Path.Combine(Dir.Path, "logs"),
    };

    /// <summary>CreateAsync + StartAsync, as RunPodSandbox does them.</summary>
    public async Task<SandboxInstance> RunPodAsync(PodSandboxSpec spec)
    {
        _pods.Add(spec.Id);
        await Controller.CreateAsync(spec, CancellationToken.None);
        return await Controller.StartAsync(spec.Id, CancellationToken.None);
    }

    /// <summary>A container the way ContainerManager creates one: a bundle with a busybox rootfs and the spec builder's config.json.</summary>
    public async Task<(TaskInfo Info, string LogPath)> CreateContainerAsync(PodSandboxSpec pod, SandboxInstance instance, string name,
        IReadOnlyList<string> command, IReadOnlyList<ContainerMount>? mounts = null, bool stdinOnce = false)
    {
        var id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var bundle = Path.Combine(Dir.Path, "bundles", id);
        var rootfs = Path.Combine(bundle, "rootfs");
        MakeBusyboxRootfs(rootfs);
        var spec = await Specs.BuildAsync(new ContainerSpecRequest
        {
            ContainerId = id,
            Handler = Handler,
            RootfsPath = rootfs,
            ImageName = "busybox-test",
            Container = new ContainerConfig
            {
                Name = name, Command = command, Mounts = mounts ?? [],
                Security = new ContainerSecurity { PidMode = pod.PidMode == NamespaceMode.Pod ? PidNamespaceMode.Pod : PidNamespaceMode.Container },
            },
            Sandbox = new SandboxContext
            {
                SandboxId = pod.Id,
                PodName = pod.Identity.Name,
                PodNamespace = pod.Identity.Namespace,
                PodUid = pod.Identity.Uid,
                Hostname = pod.Hostname,
                Network = instance.NetNsPath.Length > 0 ? NamespaceRef.At(instance.NetNsPath) : NamespaceRef.Host,
                Ipc = NamespaceRef.Host,
                Uts = NamespaceRef.Host,
                SharedPidNamespacePath = instance.PidNsPath.Length > 0 ? instance.PidNsPath : null,
                HostsPath = instance.HostsPath,
                ResolvConfPath = instance.ResolvConfPath,
                HostnamePath = instance.HostnamePath,
                ShmPath = instance.ShmPath,
            },
            ContainerDirectory = bundle,
        });
        await SpecWriter.WriteAsync(spec, bundle);
        var logPath = Path.Combine(Dir.Path, "logs", name + ".log");
        var info = await Controller.Tasks(pod.Id).CreateAsync(new TaskCreateRequest(id, bundle, logPath)
        {
            Name = name, Stdin = stdinOnce, StdinOnce = stdinOnce,
        });
        return (info, logPath);
    }

    private static void MakeBusyboxRootfs(string rootfs)
    {
        foreach (var d in new[] { "bin", "etc", "proc", "sys", "dev", "tmp", "www", "data" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "cat", "echo", "uname", "sleep", "hostname", "httpd", "ls", "id", "ip", "wget", "nc" })
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        File.WriteAllText(Path.Combine(rootfs, "www", "index.html"), "hello from the microVM\n");
        File.WriteAllText(Path.Combine(rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
    }

    /// <summary>Reads the CRI log until it holds <paramref name="text"/> (the host writes it as the output streams in).</summary>
    public static async Task<string> WaitForLogAsync(string logPath, string text, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        string content = "";
        while (DateTime.UtcNow < until)
        {
            content = File.Exists(logPath) ? await File.ReadAllTextAsync(logPath) : "";
            if (content.Contains(text, StringComparison.Ordinal)) return content;
            await Task.Delay(200);
        }
        throw new Xunit.Sdk.XunitException($"log {logPath} never showed \"{text}\"; it has: {content}");
    }

    public static IPAddress Ipv4Of(SandboxInstance instance) => instance.Ips.First(ip => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);

    /// <summary>Everything a pod could leave on the node, each as a message.</summary>
    public List<string> Leftovers(string id)
    {
        var left = new List<string>();
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(id, StringComparison.Ordinal)).ToList();
        if (mounts.Count > 0) left.Add("mounts: " + string.Join(" | ", mounts));
        var qemus = MicroVmTestSupport.QemuProcessesUsing(Dir.Path);
        if (qemus.Count > 0) left.Add("qemu processes: " + string.Join(", ", qemus));
        if (File.Exists(Pinner.PathOf(id, Linux.Namespaces.NamespaceTypes.Network))) left.Add("netns pin");
        var brif = $"/sys/class/net/{Bridge}/brif";
        if (Directory.Exists(brif) && Directory.EnumerateFileSystemEntries(brif).Any())
            left.Add("veths on the bridge: " + string.Join(", ", Directory.EnumerateFileSystemEntries(brif).Select(Path.GetFileName)));
        var ipam = Path.Combine(IpamDir, Bridge);
        if (Directory.Exists(ipam))
        {
            var allocations = Directory.EnumerateFiles(ipam).Select(Path.GetFileName)
                .Where(f => f is not "lock" && !f!.StartsWith("last_reserved_ip", StringComparison.Ordinal)).ToList();
            if (allocations.Count > 0) left.Add("IPAM allocations: " + string.Join(", ", allocations));
        }
        if (Directory.Exists(Path.Combine(Dir.StateDirectory, MicroVmSandboxController.DirectoryName, id))) left.Add("pod directory");
        return left;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var id in _pods)
            {
                try
                {
                    await Controller.ShutdownAsync(id, CancellationToken.None);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"cleanup of pod {id}: {e.Message}");
                }
            }
        }
        finally
        {
            await ProcessRunner.RunAsync("ip", ["link", "del", Bridge]);
            await ProcessRunner.RunAsync("umount", ["-l", Pinner.NamespaceDirectory]);
            Dir.Dispose();
        }
    }
}
