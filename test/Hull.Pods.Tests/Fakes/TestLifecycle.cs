using Hull.Core.Metadata;
using Hull.Pods.Events;
using Hull.Pods.Index;
using Hull.Pods.Stores;
using Hull.Runtime.Handlers;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Tests.Fakes;

/// <summary>
/// The real pod and container managers over a real SQLite store, with fakes for every host effect (sandboxer, tasks,
/// snapshots, bundles). <see cref="RestartAsync"/> makes new managers over the same store and fakes, as a restarted
/// hulld would find them.
/// </summary>
public sealed class TestLifecycle : IDisposable
{
    private readonly TempDirectory _dir = new();

    public TestLifecycle()
    {
        Metadata = MetadataStore.Open(_dir.Sub("root"));
        Sandboxer = new FakeSandboxer(Faults);
        Images = new FakeImages(Faults);
        Files = new FakeFilesystem(_dir.Sub("state"), Faults);
        (Pods, Containers) = Build();
    }

    public Faults Faults { get; } = new();
    public MetadataStore Metadata { get; }
    public FakeSandboxer Sandboxer { get; }
    public FakeImages Images { get; }
    public FakeFilesystem Files { get; }
    public PodManager Pods { get; private set; }
    public ContainerManager Containers { get; private set; }
    /// <summary>The current managers' events (a restart makes new ones, as a new hulld does).</summary>
    public LifecycleEvents Events { get; private set; } = null!;

    public static readonly RuntimeHandler Handler = new()
    {
        Name = "fake", Sandboxer = FakeSandboxer.SandboxerName, RuntimeBinary = "runc", CniConfDir = "/etc/cni/net.d", Snapshotter = "overlayfs",
    };

    private (PodManager, ContainerManager) Build()
    {
        var handlers = new RuntimeHandlers([Handler], Handler.Name);
        var sandboxers = new Sandboxers([Sandboxer]);
        var podIndex = new ObjectIndex<SandboxRecord>("pod sandbox");
        var containerIndex = new ObjectIndex<ContainerRecord>("container");
        var events = Events = new LifecycleEvents(podIndex, containerIndex);
        var specs = new SpecBuilder(new SpecBuilderOptions(), new HostInfo
        {
            Kernel = new KernelVersion(6, 1), Architecture = "amd64", SeccompEnabled = false, AppArmor = AppArmorHost.Disabled,
            AllCapabilities = Capabilities.KernelNames,
        });
        var containers = new ContainerManager(new ContainerStore(Metadata), containerIndex, podIndex, sandboxers, handlers, Images, specs, Files, events);
        var pods = new PodManager(new SandboxStore(Metadata), podIndex, sandboxers, handlers, containers, events);
        return (pods, containers);
    }

    /// <summary>A new hulld over the same store and node: managers are rebuilt and recover.</summary>
    public async Task RestartAsync()
    {
        Containers.Shutdown();
        (Pods, Containers) = Build();
        await Pods.RecoverAsync(CancellationToken.None);
    }

    public static PodSandboxSpec PodSpec(string name = "web", string? id = null) => new()
    {
        Id = id ?? Core.Ids.New(),
        Identity = new PodIdentity(name, "default", "uid-" + name, 0),
        RuntimeHandler = "",
    };

    public static ContainerCreateRequest ContainerRequest(string podId, string name = "app") =>
        new(podId, FakeImages.Image, new ContainerConfig { Name = name, Command = ["sh"], Security = new ContainerSecurity { PidMode = PidNamespaceMode.Container } });

    /// <summary>Polls until <paramref name="condition"/> holds (what hulld does in the background), for up to 10 s.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(10); !condition(); await Task.Delay(10))
            if (DateTime.UtcNow > until) Assert.Fail($"timed out waiting for {what}");
    }

    /// <summary>Rows of the two tables, for "nothing is left" checks.</summary>
    public async Task<(int Pods, int Containers)> RowsAsync() =>
        ((await new SandboxStore(Metadata).ListAsync(default)).Count, (await new ContainerStore(Metadata).ListAsync(default)).Count);

    public void Dispose()
    {
        Containers.Shutdown();
        Metadata.Dispose();
        _dir.Dispose();
    }
}
