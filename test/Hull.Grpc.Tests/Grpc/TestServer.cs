using System.Collections.Concurrent;
using System.Net;
using Grpc.Net.Client;
using Hull.Api.Cri;
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
/// The real CRI RuntimeService's generated base class, with Version and GetContainerEvents overridden (every other
/// method answers UNIMPLEMENTED). VersionRequest.version drives the behaviour:
/// "sleep:MS[:TAG]" waits honouring cancellation, "gate:TAG" waits (honouring cancellation) until the test releases it, "hang:MS[:TAG]" waits ignoring it, "block:MS:TAG" blocks its thread for MS before any await, "big:N" answers a
/// runtime_name of N bytes, "fail:CODE:MESSAGE" throws RpcException, "mapped:MESSAGE" throws an exception
/// the server's MapException hook translates, "boom" throws InvalidOperationException, "status:CODE:MESSAGE" sets the
/// context's status and returns a response, "context" reports the call's context (see <see cref="DescribeContext"/>),
/// "deadline" answers the deadline; anything else is echoed.
/// GetContainerEvents streams <see cref="EventCount"/> events (or the x-count request header), failing with
/// ABORTED after x-fail-after events if that header is present.
/// </summary>
public sealed class TestRuntimeService : RuntimeService.RuntimeServiceBase
{
    private readonly ConcurrentDictionary<string, CallSignals> _signals = new();

    public int EventCount { get; set; } = 5;
    public int Calls;

    internal CallSignals Signals(string tag) => _signals.GetOrAdd(tag, _ => new CallSignals());

    public override async Task<VersionResponse> Version(VersionRequest request, ServerCallContext context)
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
            case "block":
            {
                var signals = Signals(parts[2]);
                signals.Started.TrySetResult();
                Thread.Sleep(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
                signals.Finished.TrySetResult();
                return new VersionResponse { Version = request.Version, RuntimeName = "blocked" };
            }
            case "big":
                return new VersionResponse { Version = "big", RuntimeName = new string('x', int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)) };
            case "fail":
                throw new RpcException(new Status((StatusCode)int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[2]));
            case "status":
                context.Status = new Status((StatusCode)int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[2]);
                return new VersionResponse { Version = request.Version };
            case "context":
                return await DescribeContext(request, context);
            case "mapped":
                throw new MappedTestException(parts[1]);
            case "boom":
                throw new InvalidOperationException("boom");
            case "deadline":
                return new VersionResponse
                {
                    Version = request.Version, RuntimeName = context.Deadline == DateTime.MaxValue ? "none" : context.Deadline.ToString("O"),
                };
            default:
                return new VersionResponse { Version = request.Version, RuntimeName = "hull-test", RuntimeVersion = context.Method };
        }
    }

    /// <summary>
    /// Answers the call's host (Version), peer (RuntimeVersion) and the request's "x-echo" header and "x-echo-bin" length
    /// (RuntimeName); sends the response header "x-answer: 42" first and sets the trailers "x-trailer: done" and
    /// "x-trailer-bin: 1 2 3".
    /// </summary>
    private static async Task<VersionResponse> DescribeContext(VersionRequest request, ServerCallContext context)
    {
        await context.WriteResponseHeadersAsync(new Metadata { { "x-answer", "42" } });
        context.ResponseTrailers.Add("x-trailer", "done");
        context.ResponseTrailers.Add("x-trailer-bin", new byte[] { 1, 2, 3 });
        var headers = context.RequestHeaders;
        return new VersionResponse
        {
            Version = context.Host,
            RuntimeVersion = context.Peer,
            RuntimeName = $"{headers.GetValue("x-echo")}/{headers.GetValueBytes("x-echo-bin")?.Length}",
            RuntimeApiVersion = context.Method,
        };
    }

    public override async Task GetContainerEvents(GetEventsRequest request, IServerStreamWriter<ContainerEventResponse> responses, ServerCallContext context)
    {
        int count = EventCount, failAfter = -1;
        if (context.RequestHeaders.GetValue("x-count") is { } c) count = int.Parse(c, System.Globalization.CultureInfo.InvariantCulture);
        if (context.RequestHeaders.GetValue("x-fail-after") is { } f) failAfter = int.Parse(f, System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < count; i++)
        {
            if (i == failAfter) throw new RpcException(new Status(StatusCode.Aborted, $"failed after {i} events"));
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
        RuntimeService.BindService(server, service);
        configure?.Invoke(server);
        var endPoint = server.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
        return new TestServer(server, endPoint, service);
    }

    /// <summary>A Grpc.Net.Client channel to the server: an independent client implementation.</summary>
    public GrpcChannel Channel() => ChannelTo(EndPoint);

    public static GrpcChannel ChannelTo(IPEndPoint endPoint) =>
        GrpcChannel.ForAddress($"http://{endPoint}");

    public static Task<VersionResponse> VersionAsync(GrpcChannel channel, VersionRequest request) =>
        new RuntimeService.RuntimeServiceClient(channel).VersionAsync(request).ResponseAsync;

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
        var response = await VersionAsync(channel, new VersionRequest { Version = "still-alive" }).WaitAsync(RawHttp2Client.Timeout);
        Assert.Equal("still-alive", response.Version);
        Assert.Equal("hull-test", response.RuntimeName);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.StopAsync(TimeSpan.Zero).WaitAsync(RawHttp2Client.Timeout);
        await Server.DisposeAsync().AsTask().WaitAsync(RawHttp2Client.Timeout);
    }
}
