using System.Text.Json;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Foundation;

/// <summary>
/// Independent gRPC implementations talk to hulld over its socket: grpc-js (Node) and grpc-go (the
/// same library the kubelet and crictl use). Each client prints one JSON line per case.
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

    [E2EFact]
    public async Task Hull_client_server_streaming_honours_its_deadline()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var started = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var events = hulld.Cri.Runtime.GetContainerEvents(new Hull.Api.Cri.GetEventsRequest(), deadline: CriClient.In(TimeSpan.FromMilliseconds(500)));
            await foreach (var _ in events.ResponseStream.ReadAllAsync()) { }
        });
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
    }
}
