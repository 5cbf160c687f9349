using System.Collections.Concurrent;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Hull.Core.Deprecations;
using Hull.Grpc.Ttrpc;
using Hull.Runtime.Spec;
using Hull.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using NriPb = Hull.Api.Nri;

namespace Hull.Nri.Tests;

/// <summary>
/// Plugins built before NRI v0.12 have no per-event RPCs (RunPodSandbox, PostCreateContainer, ...) and get those
/// events through StateChange. No such plugin can be built here, so <see cref="OldProtocolPlugin"/> speaks the wire
/// protocol of a v0.11 plugin: the NRI mux, a ttrpc server of the v0.11 Plugin service and a ttrpc client of the
/// Runtime service.
/// </summary>
public sealed class OldProtocolPluginTests
{
    [Fact]
    public async Task An_old_plugin_gets_events_through_state_change_in_order_after_one_unimplemented_answer()
    {
        await using var env = new NriTestEnvironment();
        var deprecations = new DeprecationRegistry(null, NullLogger.Instance);
        var host = await env.StartAsync(deprecations: deprecations);
        await using var plugin = await OldProtocolPlugin.ConnectAsync(env.SocketPath, "old", "50");
        await env.WaitForPluginsAsync(1);

        await NriTestEnvironment.RunEveryEventAsync(host);

        // What the plugin handled: the v0.11 RPCs directly, every other event as a StateChange, in lifecycle order.
        Assert.Equal(
        [
            "Synchronize", "StateChange RunPodSandbox pod-1", "CreateContainer", "StateChange PostCreateContainer pod-1 ctr-1",
            "StateChange StartContainer pod-1 ctr-1", "StateChange PostStartContainer pod-1 ctr-1", "UpdateContainer",
            "StateChange PostUpdateContainer pod-1 ctr-1", "UpdatePodSandbox", "StateChange PostUpdatePodSandbox pod-1", "StopContainer",
            "StateChange RemoveContainer pod-1 ctr-1", "StateChange StopPodSandbox pod-1", "StateChange RemovePodSandbox pod-1",
        ], plugin.Handled);
        // What reached its ttrpc server: one per-event RPC answered UNIMPLEMENTED, then no more.
        Assert.Equal(
        [
            "Configure", "Synchronize", "RunPodSandbox", "StateChange", "CreateContainer", "StateChange", "StateChange", "StateChange",
            "UpdateContainer", "StateChange", "UpdatePodSandbox", "StateChange", "StopContainer", "StateChange", "StateChange", "StateChange",
        ], plugin.Received);
        Assert.Equal(["RunPodSandbox"], plugin.Received.Where(m => !OldProtocolPlugin.V011Methods.Contains(m)));

        var warning = Assert.Single(deprecations.Snapshot());
        Assert.Equal((DeprecationIds.NriPluginInterface, 1L), (warning.Id, warning.Occurrences));
        Assert.Contains("\"50-old\"", warning.Message);
        Assert.Contains("StateChange", warning.Message);
        Assert.Null(host.ListPlugins()[0].LastError);
    }

    [PluginFact]
    public async Task The_fallback_is_per_plugin_a_current_plugin_next_to_an_old_one_keeps_its_own_rpcs()
    {
        await using var env = new NriTestEnvironment();
        env.Install("10-logger", "logger", "-log-file", env.LogFile("logger"));
        var deprecations = new DeprecationRegistry(null, NullLogger.Instance);
        var host = await env.StartAsync(deprecations: deprecations);
        await using var plugin = await OldProtocolPlugin.ConnectAsync(env.SocketPath, "old", "50");
        await env.WaitForPluginsAsync(2);

        var pod = NriTestEnvironment.Pod();
        await host.RunPodSandboxAsync(pod);
        await host.StopPodSandboxAsync(pod);

        // The logger (v0.12.2) logs the dedicated RPCs it got; it also answers StateChange, but was never sent one.
        Assert.Equal(["Synchronize", "RunPodSandbox", "StopPodSandbox"], await UpstreamNriPlugins.LoggedEventsAsync(env.LogFile("logger"), 3));
        Assert.Equal(["Synchronize", "StateChange RunPodSandbox pod-1", "StateChange StopPodSandbox pod-1"], plugin.Handled);
        var warning = Assert.Single(deprecations.Snapshot());
        Assert.Equal(1L, warning.Occurrences);
        Assert.Contains("\"50-old\"", warning.Message);
    }
}

/// <summary>
/// A plugin built against NRI v0.11 as it looks on the wire: it connects to the NRI socket, multiplexes the two ttrpc
/// connections (Hull's own mux, client and server: they are what the real plugins are tested against), registers,
/// and serves only the methods v0.11's Plugin service had. Its ttrpc server answers the others as containerd/ttrpc's
/// does for a method it does not know (services.go: codes.Unimplemented, "method NAME").
/// </summary>
internal sealed class OldProtocolPlugin : NriPb.Plugin.PluginBase, IAsyncDisposable
{
    /// <summary>The Plugin service of containerd/nri v0.11.0 (pkg/api/api.proto).</summary>
    public static readonly IReadOnlySet<string> V011Methods = new HashSet<string>
    {
        "Configure", "Synchronize", "Shutdown", "CreateContainer", "UpdateContainer", "StopContainer", "UpdatePodSandbox", "StateChange",
        "ValidateContainerAdjustment",
    };

    private readonly ConnectionMux _mux;
    private readonly TtrpcClient _client;
    private readonly Task _serving;
    private readonly RequestTap _tap;
    private readonly ConcurrentQueue<string> _handled = new();

    private OldProtocolPlugin(Socket socket)
    {
        _mux = new ConnectionMux(new NetworkStream(socket, ownsSocket: true), NullLogger.Instance);
        var server = new TtrpcServer();
        NriPb.Plugin.BindService(new OnlyMethods(server, V011Methods), this);
        _tap = new RequestTap(_mux.Open(ConnectionMux.PluginServiceConnection));
        _serving = server.ServeAsync(_tap);
        _client = new TtrpcClient(_mux.Open(ConnectionMux.RuntimeServiceConnection));
        _mux.Start();
    }

    public static async Task<OldProtocolPlugin> ConnectAsync(string socketPath, string name, string index)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        var plugin = new OldProtocolPlugin(socket);
        // v0.11's RegisterPluginRequest had no NRI version (field 3 came later).
        await new NriPb.Runtime.RuntimeClient(plugin._client).RegisterPluginAsync(new NriPb.RegisterPluginRequest { PluginName = name, PluginIdx = index },
            deadline: DateTime.UtcNow.AddSeconds(10));
        return plugin;
    }

    /// <summary>The calls the plugin handled, StateChange with its event, pod and container.</summary>
    public string[] Handled => _handled.ToArray();

    /// <summary>The method of every request that reached its ttrpc server, handled or not.</summary>
    public string[] Received => _tap.Methods.ToArray();

    private static int Mask(params NriPb.Event[] events) => events.Aggregate(0, (mask, e) => mask | 1 << ((int)e - 1));

    public override Task<NriPb.ConfigureResponse> Configure(NriPb.ConfigureRequest request, ServerCallContext context) =>
        Task.FromResult(new NriPb.ConfigureResponse
        {
            Events = Mask(NriPb.Event.RunPodSandbox, NriPb.Event.StopPodSandbox, NriPb.Event.RemovePodSandbox, NriPb.Event.CreateContainer,
                NriPb.Event.PostCreateContainer, NriPb.Event.StartContainer, NriPb.Event.PostStartContainer, NriPb.Event.UpdateContainer,
                NriPb.Event.PostUpdateContainer, NriPb.Event.StopContainer, NriPb.Event.RemoveContainer, NriPb.Event.UpdatePodSandbox,
                NriPb.Event.PostUpdatePodSandbox),
        });

    private T Handle<T>(string what, T response)
    {
        _handled.Enqueue(what);
        return response;
    }

    public override Task<NriPb.SynchronizeResponse> Synchronize(NriPb.SynchronizeRequest request, ServerCallContext context) =>
        Task.FromResult(Handle("Synchronize", new NriPb.SynchronizeResponse()));

    public override Task<NriPb.CreateContainerResponse> CreateContainer(NriPb.CreateContainerRequest request, ServerCallContext context) =>
        Task.FromResult(Handle("CreateContainer", new NriPb.CreateContainerResponse()));

    public override Task<NriPb.UpdateContainerResponse> UpdateContainer(NriPb.UpdateContainerRequest request, ServerCallContext context) =>
        Task.FromResult(Handle("UpdateContainer", new NriPb.UpdateContainerResponse()));

    public override Task<NriPb.StopContainerResponse> StopContainer(NriPb.StopContainerRequest request, ServerCallContext context) =>
        Task.FromResult(Handle("StopContainer", new NriPb.StopContainerResponse()));

    public override Task<NriPb.UpdatePodSandboxResponse> UpdatePodSandbox(NriPb.UpdatePodSandboxRequest request, ServerCallContext context) =>
        Task.FromResult(Handle("UpdatePodSandbox", new NriPb.UpdatePodSandboxResponse()));

    public override Task<NriPb.Empty> StateChange(NriPb.StateChangeEvent request, ServerCallContext context) =>
        Task.FromResult(Handle($"StateChange {request.Event} {request.Pod?.Id}{(request.Container is null ? "" : " " + request.Container.Id)}", new NriPb.Empty()));

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        await _mux.DisposeAsync();
        await _serving;
    }

    /// <summary>Binds only the named methods of a service, as a stub generated from an older proto would.</summary>
    private sealed class OnlyMethods(ServiceBinderBase inner, IReadOnlySet<string> names) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            if (names.Contains(method.Name)) inner.AddMethod(method, handler);
        }
    }

    /// <summary>Reads through to the ttrpc server and notes the method of every request message that passes.</summary>
    private sealed class RequestTap(Stream inner) : Stream
    {
        private readonly List<byte> _pending = [];
        public ConcurrentQueue<string> Methods { get; } = new();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken);
            _pending.AddRange(buffer[..n].ToArray());
            while (_pending.Count >= TtrpcProtocol.HeaderLength)
            {
                var header = TtrpcFrameHeader.Read(_pending.Take(TtrpcProtocol.HeaderLength).ToArray());
                int total = TtrpcProtocol.HeaderLength + (int)header.Length;
                if (_pending.Count < total) break;
                if (header.Type == TtrpcMessageType.Request) Methods.Enqueue(MethodOf(_pending.Skip(TtrpcProtocol.HeaderLength).Take((int)header.Length).ToArray()));
                _pending.RemoveRange(0, total);
            }
            return n;
        }

        /// <summary>Field 2 of containerd/ttrpc's Request (request.proto: service 1, method 2).</summary>
        private static string MethodOf(byte[] request)
        {
            var input = new CodedInputStream(request);
            for (uint tag; (tag = input.ReadTag()) != 0;)
            {
                if (WireFormat.GetTagFieldNumber(tag) == 2) return input.ReadString();
                input.SkipLastField();
            }
            return "";
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override void Flush() => inner.Flush();
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
