using System.Collections.Concurrent;
using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Http2;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>gRPC call semantics end to end, through <see cref="Hull.Grpc.Client.GrpcChannel"/>.</summary>
public class GrpcCallTests
{
    private static readonly TimeSpan Timeout = RawHttp2Client.Timeout;

    private static Task<VersionResponse> VersionAsync(Hull.Grpc.Client.GrpcChannel channel, string version, TimeSpan? deadline = null,
        CancellationToken cancellationToken = default) =>
        channel.UnaryAsync<VersionResponse>(TestServer.VersionMethod, new VersionRequest { Version = version }, deadline, cancellationToken).WaitAsync(Timeout);

    private static async Task<RpcException> FailsAsync(Task call) => await Assert.ThrowsAsync<RpcException>(() => call);

    [Fact]
    public async Task UnaryCallSucceeds()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var response = await VersionAsync(channel, "v1");
        Assert.Equal("v1", response.Version);
        Assert.Equal("hull-test", response.RuntimeName);
        Assert.Equal("/runtime.v1.RuntimeService/Version", response.RuntimeVersion);
    }

    [Fact]
    public async Task EmptyRequestAndResponseMessagesWork()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var response = await VersionAsync(channel, "");
        Assert.Equal("", response.Version);
    }

    [Fact]
    public async Task MethodWithoutImplementationIsUnimplementedNamingTheMethod()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var method = TestServer.RuntimeServiceDescriptor.FindMethodByName("RunPodSandbox");
        var e = await FailsAsync(channel.UnaryAsync<RunPodSandboxResponse>(method, new RunPodSandboxRequest()).WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("runtime.v1.RuntimeService/RunPodSandbox", e.Detail);
    }

    [Fact]
    public async Task UnboundServiceIsUnimplementedNamingThePath()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var method = ApiReflection.Descriptor.Services.Single(s => s.Name == "ImageService").FindMethodByName("ListImages");
        var e = await FailsAsync(channel.UnaryAsync<ListImagesResponse>(method, new ListImagesRequest()).WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("/runtime.v1.ImageService/ListImages", e.Detail);
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task DeadlineExceededArrivesAtTheDeadlineEvenIfTheHandlerIgnoresIt()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var stopwatch = Stopwatch.StartNew();
        var e = await FailsAsync(VersionAsync(channel, "hang:10000:ignore", TimeSpan.FromMilliseconds(300)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 250, 4000);
        Assert.False(server.Service.Signals("ignore").Finished.Task.IsCompleted, "the status must not wait for the handler");
        // The connection is fine, and the stream slot was released.
        Assert.Equal("next", (await VersionAsync(channel, "next")).Version);
    }

    [Fact]
    public async Task DeadlineCancelsACooperativeHandler()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await FailsAsync(VersionAsync(channel, "sleep:5000:coop", TimeSpan.FromMilliseconds(200)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        await server.Service.Signals("coop").Cancelled.Task.WaitAsync(Timeout);
    }

    [Fact]
    public async Task DeadlineIsVisibleToTheHandler()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var before = DateTime.UtcNow;
        var response = await VersionAsync(channel, "deadline", TimeSpan.FromSeconds(30));
        var deadline = DateTime.Parse(response.RuntimeName, null, System.Globalization.DateTimeStyles.RoundtripKind);
        Assert.InRange(deadline, before.AddSeconds(29), DateTime.UtcNow.AddSeconds(31));
        Assert.Equal("none", (await VersionAsync(channel, "deadline")).RuntimeName);
    }

    [Fact]
    public async Task CallWithinItsDeadlineSucceeds()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        Assert.Equal("slept", (await VersionAsync(channel, "sleep:50", TimeSpan.FromSeconds(3))).RuntimeName);
    }

    [Fact]
    public async Task ClientCancellationCancelsTheHandler()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        using var cts = new CancellationTokenSource();
        var call = VersionAsync(channel, "sleep:10000:client-cancel", cancellationToken: cts.Token);
        await server.Service.Signals("client-cancel").Started.Task.WaitAsync(Timeout);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await server.Service.Signals("client-cancel").Cancelled.Task.WaitAsync(Timeout);
        Assert.Equal("after", (await VersionAsync(channel, "after")).Version);
    }

    [Theory]
    [InlineData("50% über ✓")]
    [InlineData("line\nbreak\tand\u0001control")]
    [InlineData("emoji \U0001F600 and %41 literal")]
    [InlineData("plain")]
    public async Task StatusMessagesRoundTripThroughPercentEncoding(string message)
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await FailsAsync(VersionAsync(channel, $"fail:{(int)StatusCode.InvalidArgument}:{message}"));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(message, e.Detail);
    }

    [Theory]
    [InlineData(StatusCode.Cancelled)]
    [InlineData(StatusCode.NotFound)]
    [InlineData(StatusCode.AlreadyExists)]
    [InlineData(StatusCode.FailedPrecondition)]
    [InlineData(StatusCode.Unauthenticated)]
    public async Task HandlerStatusCodesReachTheClient(StatusCode code)
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await FailsAsync(VersionAsync(channel, $"fail:{(int)code}:because"));
        Assert.Equal(code, e.StatusCode);
        Assert.Equal("because", e.Detail);
    }

    [Fact]
    public async Task UnexpectedExceptionIsUnknown()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await FailsAsync(VersionAsync(channel, "boom"));
        Assert.Equal(StatusCode.Unknown, e.StatusCode);
        Assert.Equal("boom", e.Detail);
    }

    [Fact]
    public async Task MapExceptionTranslatesDomainErrors()
    {
        await using var server = TestServer.Start(configure: s => s.MapException =
            e => e is MappedTestException m ? new RpcException(StatusCode.NotFound, "mapped: " + m.Message) : null);
        using var channel = server.Channel();
        var mapped = await FailsAsync(VersionAsync(channel, "mapped:pod xyz"));
        Assert.Equal(StatusCode.NotFound, mapped.StatusCode);
        Assert.Equal("mapped: pod xyz", mapped.Detail);
        // The hook declining (null) falls back to UNKNOWN; RpcExceptions bypass it.
        Assert.Equal(StatusCode.Unknown, (await FailsAsync(VersionAsync(channel, "boom"))).StatusCode);
        Assert.Equal(StatusCode.Aborted, (await FailsAsync(VersionAsync(channel, $"fail:{(int)StatusCode.Aborted}:x"))).StatusCode);
    }

    [Fact]
    public async Task CallCompletedObservesEveryCall()
    {
        var records = new ConcurrentQueue<CallRecord>();
        await using var server = TestServer.Start(configure: s => s.CallCompleted = records.Enqueue);
        using var channel = server.Channel();
        await VersionAsync(channel, "ok");
        await FailsAsync(VersionAsync(channel, $"fail:{(int)StatusCode.NotFound}:gone"));
        var deadline = DateTime.UtcNow + Timeout;
        while (records.Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(10);
        var list = records.ToList();
        Assert.Equal(2, list.Count);
        Assert.All(list, r => Assert.Equal("/runtime.v1.RuntimeService/Version", r.Method));
        Assert.Contains(list, r => r.Status == StatusCode.OK);
        Assert.Contains(list, r => r.Status == StatusCode.NotFound && r.Message == "gone");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(200)]
    public async Task ServerStreamingDeliversEveryMessageInOrderThenOk(int count)
    {
        await using var server = TestServer.Start();
        server.Service.EventCount = count;
        using var channel = server.Channel();
        var events = new List<ContainerEventResponse>();
        await foreach (var e in channel.ServerStreamingAsync<ContainerEventResponse>(TestServer.EventsMethod, new GetEventsRequest()))
            events.Add(e);
        Assert.Equal(count, events.Count);
        for (int i = 0; i < count; i++)
        {
            Assert.Equal($"c{i}", events[i].ContainerId);
            Assert.Equal(i, events[i].CreatedAt);
        }
    }

    [Fact]
    public async Task ServerStreamingLargerThanTheWindowsFlows()
    {
        await using var server = TestServer.Start();
        server.Service.EventCount = 20_000; // ~400 KB: several connection and stream windows
        using var channel = server.Channel();
        int n = 0;
        using var cts = new CancellationTokenSource(Timeout);
        await foreach (var e in channel.ServerStreamingAsync<ContainerEventResponse>(TestServer.EventsMethod, new GetEventsRequest(), cancellationToken: cts.Token))
            Assert.Equal(n++, e.CreatedAt);
        Assert.Equal(20_000, n);
    }

    [Fact]
    public async Task MaxReceiveSizeIsEnforcedAndTheConnectionStaysUsable()
    {
        await using var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 1024 });
        using var channel = server.Channel();
        // VersionRequest{version = N chars} is N + 3 octets for 128 <= N < 16384.
        Assert.Equal(1021, (await VersionAsync(channel, new string('a', 1021))).Version.Length);
        var e = await FailsAsync(VersionAsync(channel, new string('a', 1022)));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("1024", e.Detail);
        var huge = await FailsAsync(VersionAsync(channel, new string('a', 2_000_000)));
        Assert.Equal(StatusCode.ResourceExhausted, huge.StatusCode);
        Assert.Equal("ok", (await VersionAsync(channel, "ok")).Version);
        Assert.Equal(1, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task MaxSendSizeIsEnforced()
    {
        await using var server = TestServer.Start(new GrpcServerOptions { MaxSendMessageSize = 1024 });
        using var channel = server.Channel();
        Assert.Equal(1000, (await VersionAsync(channel, "big:1000")).RuntimeName.Length);
        var e = await FailsAsync(VersionAsync(channel, "big:2000"));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("1024", e.Detail);
        Assert.Equal("ok", (await VersionAsync(channel, "ok")).Version);
    }

    [Fact]
    public async Task HundredConcurrentUnaryCallsOnOneConnection()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var calls = Enumerable.Range(0, 100).Select(i => VersionAsync(channel, i % 10 == 0 ? $"sleep:{i}" : $"call{i}")).ToArray();
        var responses = await Task.WhenAll(calls);
        for (int i = 0; i < 100; i++) Assert.Equal(i % 10 == 0 ? $"sleep:{i}" : $"call{i}", responses[i].Version);
        Assert.Equal(1, server.Server.ConnectionCount);
        Assert.Equal(100, server.Service.Calls);
    }

    [Fact]
    public async Task ManyCallsWithLargeMessagesInterleave()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var calls = Enumerable.Range(0, 20).Select(i => VersionAsync(channel, $"big:{50_000 + i}")).ToArray();
        var responses = await Task.WhenAll(calls);
        for (int i = 0; i < 20; i++) Assert.Equal(50_000 + i, responses[i].RuntimeName.Length);
    }

    [Fact]
    public async Task RetiredPrefixAnswersUnimplementedWithItsMessage()
    {
        var hits = new ConcurrentQueue<string>();
        await using var server = TestServer.Start(configure: s =>
        {
            s.AddRetiredPrefix("/runtime.v1alpha2.", "CRI v1alpha2 is not supported; use runtime.v1");
            s.RetiredPathCalled = hits.Enqueue;
        });
        await using var client = await server.ConnectReadyAsync();
        await client.SendUnaryAsync(1, "/runtime.v1alpha2.RuntimeService/Version", new VersionRequest());
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.Unimplemented, response.GrpcStatus);
        Assert.Equal("CRI v1alpha2 is not supported; use runtime.v1", GrpcProtocol.DecodeMessage(response.GrpcMessageRaw!));
        Assert.Equal(["/runtime.v1alpha2.RuntimeService/Version"], hits.ToArray());
    }

    [Fact]
    public async Task ServerStopsUnreachableClientGetsUnavailable()
    {
        var server = TestServer.Start();
        var endPoint = server.EndPoint;
        await server.DisposeAsync();
        using var channel = Hull.Grpc.Client.GrpcChannel.ForTcp(endPoint);
        var e = await FailsAsync(VersionAsync(channel, "nobody home"));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }

    [Fact]
    public async Task ClientEnforcesItsDeadlineWhenTheServerNeverAnswers()
    {
        // A peer that accepts the connection and then says nothing at all.
        using var silent = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        silent.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        silent.Listen(8);
        using var channel = Hull.Grpc.Client.GrpcChannel.ForTcp((System.Net.IPEndPoint)silent.LocalEndPoint!);
        var stopwatch = Stopwatch.StartNew();
        var call = channel.UnaryAsync<VersionResponse>(TestServer.VersionMethod, new VersionRequest(), TimeSpan.FromMilliseconds(300));
        await Task.WhenAny(call, Task.Delay(Timeout));
        Assert.True(call.IsCompleted, "the call outlived its deadline by seconds");
        var e = await FailsAsync(call);
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 250, 5000);
    }

    [Fact]
    public async Task UnixSocketListenerServesCalls()
    {
        string dir = Path.Combine(Path.GetTempPath(), "hull-grpc-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "hull.sock");
            await using var server = new GrpcServer();
            server.AddService(TestServer.RuntimeServiceDescriptor, new TestRuntimeService());
            server.ListenUnix(path);
            using var channel = Hull.Grpc.Client.GrpcChannel.ForUnixSocket(path);
            var response = await VersionAsync(channel, "over unix");
            Assert.Equal("over unix", response.Version);
            await server.StopAsync(TimeSpan.FromSeconds(1)).WaitAsync(Timeout);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public sealed class MismatchedService
    {
        public Task<VersionResponse> Version(VersionRequest request) => Task.FromResult(new VersionResponse());
    }

    [Fact]
    public void BindingAMethodOfTheWrongShapeFailsAtAddService()
    {
        var server = new GrpcServer();
        var e = Assert.Throws<InvalidOperationException>(() => server.AddService(TestServer.RuntimeServiceDescriptor, new MismatchedService()));
        Assert.Contains("/runtime.v1.RuntimeService/Version", e.Message);
    }
}
