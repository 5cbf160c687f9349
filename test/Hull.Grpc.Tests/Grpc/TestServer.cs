using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf.Reflection;
using Hull.Api.Cri;
using Hull.Grpc.Client;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Http2;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>Signals one call of <see cref="TestRuntimeService"/> raises, keyed by a tag in the request.</summary>
internal sealed class CallSignals
{
    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Completing it lets a "gate:TAG" call answer.</summary>
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

internal sealed class MappedTestException(string message) : Exception(message);

/// <summary>
/// Bound to the real CRI RuntimeService descriptor. VersionRequest.version drives the behaviour:
/// "sleep:MS[:TAG]" waits honouring cancellation, "gate:TAG" waits (honouring cancellation) until the test releases it, "hang:MS[:TAG]" waits ignoring it, "big:N" answers a
/// runtime_name of N bytes, "fail:CODE:MESSAGE" throws RpcException, "mapped:MESSAGE" throws an exception
/// the server's MapException hook translates, "boom" throws InvalidOperationException; anything else is echoed.
/// GetContainerEvents streams <see cref="EventCount"/> events (or the x-count request header), failing with
/// ABORTED after x-fail-after events if that header is present.
/// </summary>
public sealed class TestRuntimeService
{
    private readonly ConcurrentDictionary<string, CallSignals> _signals = new();

    public int EventCount { get; set; } = 5;
    public int Calls;

    internal CallSignals Signals(string tag) => _signals.GetOrAdd(tag, _ => new CallSignals());

    public async Task<VersionResponse> Version(VersionRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref Calls);
        var parts = request.Version.Split(':', 3);
        switch (parts[0])
        {
            case "sleep":
            {
                var signals = Signals(parts.Length > 2 ? parts[2] : "");
                signals.Started.TrySetResult();
                try
                {
                    await Task.Delay(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    signals.Cancelled.TrySetResult();
                    throw;
                }
                finally
                {
                    signals.Finished.TrySetResult();
                }
                return new VersionResponse { Version = request.Version, RuntimeName = "slept" };
            }
            case "gate":
            {
                var signals = Signals(parts[1]);
                signals.Started.TrySetResult();
                try
                {
                    await signals.Release.Task.WaitAsync(context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    signals.Cancelled.TrySetResult();
                    throw;
                }
                finally
                {
                    signals.Finished.TrySetResult();
                }
                return new VersionResponse { Version = request.Version, RuntimeName = "released" };
            }
            case "hang":
            {
                var signals = Signals(parts.Length > 2 ? parts[2] : "");
                signals.Started.TrySetResult();
                await Task.Delay(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None);
                signals.Finished.TrySetResult();
                return new VersionResponse { Version = request.Version, RuntimeName = "hung" };
            }
            case "big":
                return new VersionResponse { Version = "big", RuntimeName = new string('x', int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)) };
            case "fail":
                throw new RpcException((StatusCode)int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[2]);
            case "mapped":
                throw new MappedTestException(parts[1]);
            case "boom":
                throw new InvalidOperationException("boom");
            case "deadline":
                return new VersionResponse { Version = request.Version, RuntimeName = context.Deadline?.ToString("O") ?? "none" };
            default:
                return new VersionResponse { Version = request.Version, RuntimeName = "hull-test", RuntimeVersion = context.Method };
        }
    }

    public async Task GetContainerEvents(GetEventsRequest request, IServerStreamWriter<ContainerEventResponse> responses, ServerCallContext context)
    {
        int count = EventCount, failAfter = -1;
        foreach (var h in context.RequestHeaders)
        {
            if (h.Name == "x-count") count = int.Parse(h.Value, System.Globalization.CultureInfo.InvariantCulture);
            if (h.Name == "x-fail-after") failAfter = int.Parse(h.Value, System.Globalization.CultureInfo.InvariantCulture);
        }
        for (int i = 0; i < count; i++)
        {
            if (i == failAfter) throw new RpcException(StatusCode.Aborted, $"failed after {i} events");
            await responses.WriteAsync(new ContainerEventResponse
            {
                ContainerId = $"c{i}",
                CreatedAt = i,
                ContainerEventType = ContainerEventType.ContainerStartedEvent,
            });
        }
    }
}

/// <summary>A GrpcServer on 127.0.0.1:0 serving <see cref="TestRuntimeService"/>.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    public static readonly ServiceDescriptor RuntimeServiceDescriptor =
        ApiReflection.Descriptor.Services.Single(s => s.Name == "RuntimeService");
    public static readonly MethodDescriptor VersionMethod = RuntimeServiceDescriptor.FindMethodByName("Version");
    public static readonly MethodDescriptor EventsMethod = RuntimeServiceDescriptor.FindMethodByName("GetContainerEvents");

    private TestServer(GrpcServer server, IPEndPoint endPoint, TestRuntimeService service)
    {
        Server = server;
        EndPoint = endPoint;
        Service = service;
    }

    public GrpcServer Server { get; }
    public IPEndPoint EndPoint { get; }
    public TestRuntimeService Service { get; }

    public static TestServer Start(GrpcServerOptions? options = null, Action<GrpcServer>? configure = null,
        Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        var service = new TestRuntimeService();
        var server = new GrpcServer(options ?? new GrpcServerOptions(), logger);
        server.AddService(RuntimeServiceDescriptor, service);
        configure?.Invoke(server);
        var endPoint = server.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
        return new TestServer(server, endPoint, service);
    }

    public GrpcChannel Channel() => GrpcChannel.ForTcp(EndPoint);

    public Task<RawHttp2Client> ConnectAsync() => RawHttp2Client.ConnectAsync(EndPoint);

    /// <summary>A raw connection that has completed the preface/SETTINGS exchange.</summary>
    public async Task<RawHttp2Client> ConnectReadyAsync(params (Hull.Grpc.Http2.SettingId Id, uint Value)[] settings)
    {
        var client = await ConnectAsync();
        await client.HandshakeAsync(settings);
        return client;
    }

    /// <summary>Proves the server still works: a unary call on a fresh connection succeeds.</summary>
    public async Task AssertServesAsync()
    {
        using var channel = Channel();
        var response = await channel.UnaryAsync<VersionResponse>(VersionMethod, new VersionRequest { Version = "still-alive" })
            .WaitAsync(RawHttp2Client.Timeout);
        Assert.Equal("still-alive", response.Version);
        Assert.Equal("hull-test", response.RuntimeName);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.StopAsync(TimeSpan.Zero).WaitAsync(RawHttp2Client.Timeout);
        await Server.DisposeAsync().AsTask().WaitAsync(RawHttp2Client.Timeout);
    }
}
