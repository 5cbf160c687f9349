using Hull.Core.Deprecations;
using Hull.Kube;
using Microsoft.Extensions.Logging;

namespace Hulld.Composition;

/// <summary>
/// The node-condition reporter inside hulld, when <see cref="NodeConditionsOptions.Placement"/> says hulld publishes:
/// fed by the deprecation registry, woken by each new warning, running on its own task until disposal, so neither the
/// start of CRI nor any CRI call waits for the API server.
/// </summary>
internal sealed class NodeConditionsParts : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;
    private readonly Action? _unsubscribe;

    private NodeConditionsParts(IDeprecationPublisher? publisher, Func<CancellationToken, Task>? run, Action? unsubscribe)
    {
        Publisher = publisher;
        _unsubscribe = unsubscribe;
        _running = run is null ? Task.CompletedTask : Task.Run(() => run(_stop.Token));
    }

    /// <summary>What the admin API shows; null when publishing is disabled.</summary>
    public IDeprecationPublisher? Publisher { get; }

    public static NodeConditionsParts Start(NodeConditionsOptions options, DeprecationRegistry deprecations, ILoggerFactory loggers)
    {
        var log = loggers.CreateLogger("node-conditions");
        switch (options.Placement(KubeEnvironment.Current))
        {
            case ReporterPlacement.ThisProcess:
                var reporter = new NodeConditionReporter(options, _ => Task.FromResult(deprecations.Snapshot()), log);
                deprecations.Recorded += reporter.OnRecorded;
                return new NodeConditionsParts(reporter, reporter.RunAsync, () => deprecations.Recorded -= reporter.OnRecorded);
            case ReporterPlacement.DaemonSetPod:
                const string elsewhere = "published by `hulld node-conditions` in the DaemonSet's pod (this hulld has no kubeconfig and runs outside a pod)";
                log.LogInformation("node conditions: {Where}", elsewhere);
                return new NodeConditionsParts(new Elsewhere(new DeprecationPublication(elsewhere, "", "", null, null, null, null)), null, null);
            default:
                return new NodeConditionsParts(null, null, null);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _unsubscribe?.Invoke();
        await _stop.CancelAsync().ConfigureAwait(false);
        await _running.ConfigureAwait(false);
        _stop.Dispose();
    }

    private sealed record Elsewhere(DeprecationPublication Status) : IDeprecationPublisher;
}
