using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Grpc.Net.Client;
using Hull.Api.Cri;
using Hull.Grpc.Client;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Http2;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>
/// gRPC call semantics end to end: generated services bound to <see cref="GrpcServer"/>, called through the generated
/// client stubs on Grpc.Net.Client.
/// </summary>
public class GrpcCallTests
{
    private static readonly TimeSpan Timeout = RawHttp2Client.Timeout;

    private static Task<VersionResponse> VersionAsync(GrpcChannel channel, string version, TimeSpan? deadline = null,
        CancellationToken cancellationToken = default) =>
        new RuntimeService.RuntimeServiceClient(channel).VersionAsync(new VersionRequest { Version = version },
            deadline: deadline is { } d ? DateTime.UtcNow + d : null, cancellationToken: cancellationToken).ResponseAsync.WaitAsync(Timeout);

    private static async IAsyncEnumerable<ContainerEventResponse> EventsAsync(GrpcChannel channel, Metadata? headers = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = new RuntimeService.RuntimeServiceClient(channel).GetContainerEvents(new GetEventsRequest(), headers, cancellationToken: cancellationToken);
        await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken)) yield return e;
    }

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
        // TestRuntimeService does not override RunPodSandbox: the generated base class answers for it.
        var e = await FailsAsync(new RuntimeService.RuntimeServiceClient(channel).RunPodSandboxAsync(new RunPodSandboxRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("runtime.v1.RuntimeService/RunPodSandbox", e.Status.Detail);
    }

    [Fact]
    public async Task UnboundServiceIsUnimplementedNamingThePath()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await FailsAsync(new ImageService.ImageServiceClient(channel).ListImagesAsync(new ListImagesRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("/runtime.v1.ImageService/ListImages", e.Status.Detail);
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
        Assert.Equal(StatusCode.Cancelled, (await FailsAsync(call)).StatusCode);
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
        Assert.Equal(message, e.Status.Detail);
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
        Assert.Equal("because", e.Status.Detail);
    }

    [Fact]
    public async Task UnexpectedExceptionIsUnknown()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await FailsAsync(VersionAsync(channel, "boom"));
        Assert.Equal(StatusCode.Unknown, e.StatusCode);
        Assert.Equal("boom", e.Status.Detail);
    }

    [Fact]
    public async Task MapExceptionTranslatesDomainErrors()
    {
        await using var server = TestServer.Start(configure: s => s.MapException =
            e => e is MappedTestException m ? new Status(StatusCode.NotFound, "mapped: " + m.Message) : null);
        using var channel = server.Channel();
        var mapped = await FailsAsync(VersionAsync(channel, "mapped:pod xyz"));
        Assert.Equal(StatusCode.NotFound, mapped.StatusCode);
        Assert.Equal("mapped: pod xyz", mapped.Status.Detail);
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
        await foreach (var e in EventsAsync(channel)) events.Add(e);
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
        await foreach (var e in EventsAsync(channel, cancellationToken: cts.Token)) Assert.Equal(n++, e.CreatedAt);
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
        Assert.Contains("1024", e.Status.Detail);
        var huge = await FailsAsync(VersionAsync(channel, new string('a', 2_000_000)));
        Assert.Equal(StatusCode.ResourceExhausted, huge.StatusCode);
        Assert.Equal("ok", (await VersionAsync(channel, "ok")).Version);
        Assert.Equal(1, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task RequestOfTheMaximumSizeFitsAfterEarlierRequestsLeftConnectionCreditPending()
    {
        // The connection window is just above the limit; the first request's credit comes back below the
        // half-window batching threshold, so the second must not stall waiting for it.
        await using var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 1 << 20, Http2 = new() { ConnectionWindowSize = 65_535 } });
        using var channel = server.Channel();
        Assert.Equal(500_000, (await VersionAsync(channel, new string('a', 500_000))).Version.Length);
        // VersionRequest{version = N chars} is N + 4 octets for 16384 <= N < 2097152.
        Assert.Equal((1 << 20) - 4, (await VersionAsync(channel, new string('b', (1 << 20) - 4))).Version.Length);
        Assert.Equal(StatusCode.ResourceExhausted, (await FailsAsync(VersionAsync(channel, new string('c', (1 << 20) - 3)))).StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, (await FailsAsync(VersionAsync(channel, new string('d', 3 << 20)))).StatusCode);
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
        Assert.Contains("1024", e.Status.Detail);
        Assert.Equal("ok", (await VersionAsync(channel, "ok")).Version);
    }

    [Fact]
    public async Task HundredConcurrentUnaryCallsOnOneConnection()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        // One call first: before the server's SETTINGS arrive, the client assumes 100 streams per connection and may
        // open a second connection for a burst (EnableMultipleHttp2Connections); after them it knows the limit is 1000.
        await VersionAsync(channel, "warm-up");
        var calls = Enumerable.Range(0, 100).Select(i => VersionAsync(channel, i % 10 == 0 ? $"sleep:{i}" : $"call{i}")).ToArray();
        var responses = await Task.WhenAll(calls);
        for (int i = 0; i < 100; i++) Assert.Equal(i % 10 == 0 ? $"sleep:{i}" : $"call{i}", responses[i].Version);
        Assert.Equal(1, server.Server.ConnectionCount);
        Assert.Equal(101, server.Service.Calls);
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
        Assert.Equal("CRI v1alpha2 is not supported; use runtime.v1", GrpcWire.DecodeMessage(response.GrpcMessageRaw!));
        Assert.Equal(["/runtime.v1alpha2.RuntimeService/Version"], hits.ToArray());
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
            RuntimeService.BindService(server, new TestRuntimeService());
            server.ListenUnix(path);
            using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = UnixSocketHttpHandler.Create(path) });
            var response = await VersionAsync(channel, "over unix");
            Assert.Equal("over unix", response.Version);
            await server.StopAsync(TimeSpan.FromSeconds(1)).WaitAsync(Timeout);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void BindingAMethodTwiceFails()
    {
        var server = new GrpcServer();
        RuntimeService.BindService(server, new TestRuntimeService());
        var e = Assert.Throws<InvalidOperationException>(() => RuntimeService.BindService(server, new TestRuntimeService()));
        Assert.Contains("/runtime.v1.RuntimeService/", e.Message);
    }
}
