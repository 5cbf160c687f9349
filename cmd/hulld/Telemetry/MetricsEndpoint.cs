using Hull.Grpc.Server;
using Hulld.Composition;

namespace Hulld.Telemetry;

/// <summary>The metrics listener with what it serves, when <c>[metrics] address</c> is set; disposing stops it.</summary>
internal sealed class MetricsEndpoint : IAsyncDisposable
{
    private readonly PrometheusBridge _bridge;
    private readonly MetricsServer _server;

    private MetricsEndpoint(PrometheusBridge bridge, MetricsServer server)
    {
        _bridge = bridge;
        _server = server;
    }

    public Uri BaseAddress => _server.BaseAddress;

    /// <summary>Starts it, or returns null when no address is configured (metrics are off and cost nothing).</summary>
    public static async Task<MetricsEndpoint?> StartAsync(MetricsOptions options, string stateDirectory, GrpcServer grpc, CancellationToken cancellationToken)
    {
        if (options.Address.Length == 0) return null;
        var bridge = new PrometheusBridge();
        try
        {
            var server = await MetricsServer.StartAsync(options.Address, bridge, new DebugPages(grpc, new ThreadStacks(stateDirectory)), cancellationToken)
                .ConfigureAwait(false);
            return new MetricsEndpoint(bridge, server);
        }
        catch
        {
            bridge.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        _bridge.Dispose();
    }
}
