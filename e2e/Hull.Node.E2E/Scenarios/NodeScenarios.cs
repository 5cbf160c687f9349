using Hull.Node.E2E.Cluster;
using Hull.Node.E2E.Node;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Hull.Node.E2E.Scenarios;

/// <summary>
/// The node scenarios of issue 19, one test each (S1 … S8, one file each), on the one shared node of
/// <see cref="NodeFixture"/>. They run in their numbered order: S8 (image GC) waits for the kubelet's image GC, which
/// runs 5 minutes after the kubelet started, so it goes last, when the others have used most of that time. Each test
/// works in its own namespace and deletes it at the end.
/// </summary>
[Collection(NodeCollection.Name)]
[TestCaseOrderer("Hull.Node.E2E.Scenarios.ScenarioOrderer", "Hull.Node.E2E")]
public sealed partial class NodeScenarios(NodeFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan PodStart = TimeSpan.FromSeconds(120);

    private KubeCluster Cluster => fixture.Cluster;
    private KubeNode Node => fixture.Node;
    private string Busybox => fixture.Images.Busybox.Reference;

    /// <summary>A namespace for one test, deleted (without waiting) when the returned scope ends.</summary>
    private async Task<TestNamespace> NamespaceAsync(string suffix) => new(Cluster, await Node.CreateNamespaceAsync(suffix));

    private sealed class TestNamespace(KubeCluster cluster, string name) : IAsyncDisposable
    {
        public string Name => name;
        public override string ToString() => name;

        public async ValueTask DisposeAsync() =>
            await cluster.KubectlAsync(["delete", "namespace", name, "--wait=false", "--ignore-not-found"]);
    }

    private void Log(string line) => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {line}");
}

/// <summary>Runs the scenarios by name, so S1 … S8 run in that order.</summary>
public sealed class ScenarioOrderer : ITestCaseOrderer
{
    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethod.Method.Name, StringComparer.Ordinal);
}
