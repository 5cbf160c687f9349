using System.Text.Json;
using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;

namespace Hull.E2E.Foundation;

/// <summary>
/// Independent gRPC implementations talk to hulld over its socket: grpc-js (Node), grpc-go (the same library the
/// kubelet and crictl use), each printing one JSON line per case, and Grpc.Net.Client in process.
/// </summary>
public sealed class InteropTests
{
    private static async Task<JsonElement> NodeAsync(HulldProcess hulld, params string[] args)
    {
        var result = await ProcessRunner.RunAsync("node",
            [Repo.NodeInteropClient, "--socket", hulld.Socket, "--proto", Repo.CriProto, .. args], TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, $"grpc-js client failed: {result}");
        return JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
    }

    private static async Task<JsonElement> GoAsync(HulldProcess hulld, params string[] args)
    {
        var result = await ProcessRunner.RunAsync(Repo.GoInteropClient, ["--socket", hulld.Socket, .. args], TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, $"grpc-go client failed: {result}");
        return JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
    }

    private static int Code(JsonElement e) => e.GetProperty("code").GetInt32();

    [E2EFact("node")]
    public async Task GrpcJs_unary_calls_get_correct_answers()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var version = await NodeAsync(hulld, "version");
        Assert.Equal(0, Code(version));
        Assert.Equal("hull", version.GetProperty("response").GetProperty("runtime_name").GetString());
        var status = await NodeAsync(hulld, "status");
        Assert.Equal(0, Code(status));
        Assert.Contains("RuntimeReady", status.GetProperty("response").ToString());
        var config = await NodeAsync(hulld, "runtimeconfig");
        Assert.Equal("CGROUPFS", config.GetProperty("response").GetProperty("linux").GetProperty("cgroup_driver").GetString());
        var unimplemented = await NodeAsync(hulld, "unimplemented");
        Assert.Equal(12, Code(unimplemented));
        Assert.Contains("CheckpointContainer", unimplemented.GetProperty("details").GetString());
    }

    [E2EFact("node")]
    public async Task GrpcJs_streaming_with_deadline_and_cancellation()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var deadline = await NodeAsync(hulld, "deadline");
        Assert.Equal(4, Code(deadline));
        Assert.InRange(deadline.GetProperty("ms").GetInt32(), 400, 3000);
        Assert.True(deadline.GetProperty("followup_ok").GetBoolean());
        var cancel = await NodeAsync(hulld, "stream-cancel");
        Assert.Equal(1, Code(cancel));
        Assert.True(cancel.GetProperty("followup_ok").GetBoolean());
    }

    [E2EFact("node")]
    public async Task GrpcJs_large_messages_up_to_the_limit_and_RESOURCE_EXHAUSTED_beyond()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var large = await NodeAsync(hulld, "large", "--size", (8 << 20).ToString());
        Assert.Equal(0, Code(large));
        var tooLarge = await NodeAsync(hulld, "large", "--size", "17000000");
        Assert.Equal(8, Code(tooLarge));
        Assert.True(tooLarge.GetProperty("followup_ok").GetBoolean(), "the connection must stay usable");
    }

    [E2EFact("node")]
    public async Task GrpcJs_concurrent_calls_on_one_channel()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var result = await NodeAsync(hulld, "concurrent", "--count", "500");
        Assert.Equal(500, result.GetProperty("succeeded").GetInt32());
        Assert.Equal(0, result.GetProperty("failed").GetInt32());
    }

    [E2EFact]
    public async Task GrpcGo_client_gets_correct_answers_including_with_the_socket_path_as_authority()
    {
        Assert.True(File.Exists(Repo.GoInteropClient), $"{Repo.GoInteropClient} is missing; run hack/install-deps.sh");
        await using var hulld = await HulldProcess.StartAsync();
        var version = await GoAsync(hulld, "version");
        Assert.Equal(0, Code(version));
        Assert.Equal("hull", version.GetProperty("response").GetProperty("runtime_name").GetString());
        // Go clients of some versions send the socket path as :authority; Kestrel rejects it, Hull must not.
        var pathAuthority = await GoAsync(hulld, "version", "--authority", hulld.Socket);
        Assert.Equal(0, Code(pathAuthority));
        Assert.Equal(12, Code(await GoAsync(hulld, "unimplemented")));
        var deadline = await GoAsync(hulld, "deadline");
        Assert.Equal(4, Code(deadline));
        var concurrent = await GoAsync(hulld, "concurrent", "--count", "500");
        Assert.Equal(500, concurrent.GetProperty("succeeded").GetInt32());
        Assert.Equal(8, Code(await GoAsync(hulld, "large", "--size", "17000000")));
    }

    // Grpc.Net.Client (the .NET gRPC client, which hullctl and every other e2e test use too) through the generated stubs.

    [E2EFact]
    public async Task GrpcNetClient_unary_calls_get_correct_answers()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var runtime = hulld.Cri.Runtime;
        Assert.Equal("hull", (await runtime.VersionAsync(new VersionRequest { Version = "v1" })).RuntimeName);
        Assert.Contains((await runtime.StatusAsync(new StatusRequest())).Status.Conditions, c => c.Type == "RuntimeReady");
        Assert.Equal(CgroupDriver.Cgroupfs, (await runtime.RuntimeConfigAsync(new RuntimeConfigRequest())).Linux.CgroupDriver);
        var unimplemented = await Assert.ThrowsAsync<RpcException>(() =>
            runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = "x" }).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, unimplemented.StatusCode);
        Assert.Contains("CheckpointContainer", unimplemented.Status.Detail);
    }

    [E2EFact]
    public async Task GrpcNetClient_server_streaming_with_deadline_and_cancellation()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var started = DateTime.UtcNow;
        var deadline = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var events = hulld.Cri.Runtime.GetContainerEvents(new GetEventsRequest(), deadline: CriClient.In(TimeSpan.FromMilliseconds(500)));
            await foreach (var _ in events.ResponseStream.ReadAllAsync()) { }
        });
        Assert.Equal(StatusCode.DeadlineExceeded, deadline.StatusCode);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var cancelled = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var events = hulld.Cri.Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: cancel.Token);
            await foreach (var _ in events.ResponseStream.ReadAllAsync()) { }
        });
        Assert.Equal(StatusCode.Cancelled, cancelled.StatusCode);
        Assert.Equal("hull", (await hulld.Cri.VersionAsync()).RuntimeName);
    }

    [E2EFact]
    public async Task GrpcNetClient_large_messages_up_to_the_limit_and_RESOURCE_EXHAUSTED_beyond()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var large = new VersionRequest { Version = new string('v', 8 << 20) };
        Assert.Equal("hull", (await hulld.Cri.Runtime.VersionAsync(large)).RuntimeName);
        var tooLarge = await Assert.ThrowsAsync<RpcException>(() =>
            hulld.Cri.Runtime.VersionAsync(new VersionRequest { Version = new string('v', 17_000_000) }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, tooLarge.StatusCode);
        Assert.Equal("hull", (await hulld.Cri.VersionAsync()).RuntimeName);
    }

    [E2EFact]
    public async Task GrpcNetClient_concurrent_calls_on_one_channel()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var calls = Enumerable.Range(0, 500).Select(_ => hulld.Cri.VersionAsync()).ToArray();
        Assert.All(await Task.WhenAll(calls), v => Assert.Equal("hull", v.RuntimeName));
    }

    [E2EFact]
    public async Task GrpcNetClient_unknown_method_is_UNIMPLEMENTED_and_a_wrong_message_is_INTERNAL_on_a_live_connection()
    {
        await using var hulld = await HulldProcess.StartAsync();
        // Raw bytes to any path: the paths and bodies a generated stub would never send.
        var bytes = Marshallers.Create<byte[]>(b => b, b => b);
        var invoker = hulld.Channel.CreateCallInvoker();
        Task<byte[]> Call(string service, string method, byte[] body) =>
            invoker.AsyncUnaryCall(new Method<byte[], byte[]>(MethodType.Unary, service, method, bytes, bytes), null, new CallOptions(), body).ResponseAsync;

        var unknown = await Assert.ThrowsAsync<RpcException>(() => Call("runtime.v1.RuntimeService", "NoSuchMethod", []));
        Assert.Equal(StatusCode.Unimplemented, unknown.StatusCode);
        Assert.Contains("/runtime.v1.RuntimeService/NoSuchMethod", unknown.Status.Detail);
        // Field 1 (version, a string) announcing 5 bytes and carrying 1.
        var wrong = await Assert.ThrowsAsync<RpcException>(() => Call("runtime.v1.RuntimeService", "Version", [0x0A, 0x05, 0x61]));
        Assert.Equal(StatusCode.Internal, wrong.StatusCode);
        Assert.Contains("VersionRequest", wrong.Status.Detail);
        Assert.Equal("hull", (await hulld.Cri.VersionAsync()).RuntimeName);
    }
}
