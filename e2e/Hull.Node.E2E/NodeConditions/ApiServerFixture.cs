using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.NodeConditions;

/// <summary>
/// etcd and kube-apiserver alone (no kubelet, no controllers), shared by the node-condition and manifest tests: each
/// test registers its own Node or uses its own namespace. Starts nothing where the tests would be skipped.
/// </summary>
public sealed class ApiServerFixture : IAsyncLifetime
{
    private KubeCluster? _cluster;

    public KubeCluster Cluster => _cluster ?? throw new InvalidOperationException("the API server was not started (missing prerequisites?)");

    public async Task InitializeAsync()
    {
        if (Prerequisites.Missing(KubeTools.ClusterTools) is not null && !Prerequisites.Required) return;
        _cluster = await KubeCluster.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ApiServerCollection : ICollectionFixture<ApiServerFixture>
{
    public const string Name = "api-server";
}
