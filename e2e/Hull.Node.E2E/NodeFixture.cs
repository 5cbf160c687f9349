using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;
using Hull.Node.E2E.Node;

namespace Hull.Node.E2E;

/// <summary>
/// One cluster (etcd, kube-apiserver, kube-scheduler, kube-controller-manager), one registry with the test images and
/// one node (the runtime chosen by HULL_NODE_RUNTIME, hulld by default, and a kubelet) shared by every test of the
/// suite: starting them takes most of a minute. Tests use their own namespaces and leave the node as they found it.
/// Where the tests would be skipped for missing prerequisites it starts nothing.
/// </summary>
public sealed class NodeFixture : IAsyncLifetime
{
    private RegistryProcess? _registry;
    private TestImages? _images;
    private KubeCluster? _cluster;
    private KubeNode? _node;

    public RegistryProcess Registry => _registry ?? throw NotStarted();
    public TestImages Images => _images ?? throw NotStarted();
    public KubeCluster Cluster => _cluster ?? throw NotStarted();
    public KubeNode Node => _node ?? throw NotStarted();

    /// <summary>
    /// The kubelet collects every unused image at each image GC (S8); not for the benchmark (HULL_NODE_BENCH_OUT), where
    /// a collection between rounds would make one runtime pull again.
    /// </summary>
    private static KubeletSettings Settings => Environment.GetEnvironmentVariable("HULL_NODE_BENCH_OUT") is { Length: > 0 }
        ? new KubeletSettings()
        : new KubeletSettings { ImageGcHighThresholdPercent = 1, ImageGcLowThresholdPercent = 0 };

    /// <summary>Images pulled before the kubelet starts and never used by a pod: its image GC removes them (S8).</summary>
    public IEnumerable<TestImage> UnusedImages => [Images.Multilayer, Images.Multiarch];

    /// <summary>
    /// A pod that runs busybox for the whole suite (namespace <c>hnN-keeper</c>, pod <c>keeper</c>), so busybox is in use
    /// at every image GC: the tests never have to pull it again, and S8 can check that an image in use is kept.
    /// </summary>
    public const string KeeperPod = "keeper";
    public string KeeperNamespace => Node.NamespacePrefix + "keeper";

    private async Task StartKeeperAsync()
    {
        await Node.CreateNamespaceAsync("keeper");
        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: {{KeeperPod}}, namespace: {{KeeperNamespace}}}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - name: app
                image: {{Images.Busybox.Reference}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
            """);
        await Scenarios.Pods.WaitAsync(Cluster, KeeperNamespace, KeeperPod, Scenarios.Pods.IsReady, TimeSpan.FromSeconds(120), "Ready");
    }

    private static InvalidOperationException NotStarted() => new("the node fixture was not started (missing prerequisites?)");

    public async Task InitializeAsync()
    {
        // xunit builds collection fixtures even when every test is skipped.
        if (Prerequisites.Missing(KubeTools.NodeTools) is not null && !Prerequisites.Required) return;
        try
        {
            _registry = await RegistryProcess.StartAsync();
            _images = await TestImages.PushAsync(_registry);
            _cluster = await KubeCluster.StartAsync(new KubeClusterOptions { Controllers = true });
            _node = await KubeNode.StartAsync(_cluster, _registry, _images, settings: Settings, prePull: UnusedImages);
            await StartKeeperAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        var errors = new List<Exception>();
        foreach (var step in new Func<ValueTask>[] {
            () => _node?.DisposeAsync() ?? ValueTask.CompletedTask,
            () => _cluster?.DisposeAsync() ?? ValueTask.CompletedTask,
            () => _registry?.DisposeAsync() ?? ValueTask.CompletedTask })
        {
            try { await step(); } catch (Exception e) { errors.Add(e); }
        }
        _node = null;
        _cluster = null;
        _registry = null;
        if (errors.Count == 1) throw errors[0];
        if (errors.Count > 1) throw new AggregateException(errors);
    }
}

[CollectionDefinition(Name)]
public sealed class NodeCollection : ICollectionFixture<NodeFixture>
{
    public const string Name = "node";
}
