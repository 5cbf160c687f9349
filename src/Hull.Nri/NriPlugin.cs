using Grpc.Core;
using Hull.Core;
using Hull.Grpc.Ttrpc;
using Microsoft.Extensions.Logging;
using NriPb = Hull.Api.Nri; // not "Pb": Google.Protobuf 3.36 has a global namespace of that name

namespace Hull.Nri;

/// <summary>
/// One connected plugin (containerd/nri's adaptation plugin.go): a multiplexed socket carrying a ttrpc client of the
/// plugin's Plugin service and a ttrpc server of Hull's Runtime service (RegisterPlugin, UpdateContainers).
/// </summary>
internal sealed class NriPlugin : NriPb.Runtime.RuntimeBase, IAsyncDisposable
{
    /// <summary>Every event a plugin can subscribe to (upstream's ValidEvents).</summary>
    public const int ValidEvents = (1 << ((int)NriPb.Event.Last - 1)) - 1;

    private readonly NriHost _host;
    private readonly ConnectionMux _mux;
    private readonly TtrpcClient _client;
    private readonly Task _serving;
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>1 once the plugin answered a per-event RPC with UNIMPLEMENTED: it predates NRI v0.12 (see <see cref="NotifyAsync"/>).</summary>
    private int _stateChangeOnly;
    private readonly Action? _stop;

    private NriPlugin(NriHost host, Stream trunk, string index, string name, int pid, Action? stop)
    {
        _host = host;
        Index = index;
        Name = name;
        Pid = pid;
        _stop = stop;
        _mux = new ConnectionMux(trunk, host.Logger);
        _client = new TtrpcClient(_mux.Open(ConnectionMux.PluginServiceConnection, readsInline: true), host.Logger);
        Stub = new NriPb.Plugin.PluginClient(_client);
        var server = new TtrpcServer(host.Logger);
        NriPb.Runtime.BindService(server, this);
        _serving = server.ServeAsync(_mux.Open(ConnectionMux.RuntimeServiceConnection));
        _mux.Start();
    }

    /// <summary>A plugin Hull launched from plugin_path; <paramref name="stop"/> kills its process.</summary>
    public static NriPlugin PreInstalled(NriHost host, Stream trunk, string index, string name, int pid, Action stop) =>
        new(host, trunk, index, name, pid, stop);

    /// <summary>A plugin that connected to the socket; it names itself when it registers.</summary>
    public static NriPlugin External(NriHost host, Stream trunk, int pid) => new(host, trunk, "", "", pid, null);

    public NriPb.Plugin.PluginClient Stub { get; }
    public string Index { get; private set; }
    public string Name { get; private set; }
    public string FullName => $"{Index}-{Name}";
    public int Pid { get; }
    public bool IsPreInstalled => _stop is not null;
    public int Events { get; private set; }
    public string? LastError { get; set; }
    /// <summary>Completes when the connection is gone (the plugin exited, closed it, or broke the protocol).</summary>
    public Task Closed => _mux.Reading;
    public string? CloseReason => _mux.Error;
    public bool IsClosed => _mux.Reading.IsCompleted;

    public bool Subscribes(NriPb.Event e) => (Events & (1 << ((int)e - 1))) != 0;

    public bool Matches(string nameOrIndexedName) => nameOrIndexedName == Name || nameOrIndexedName == FullName;

    public TimeSpan RequestTimeout => _host.Options.RequestTimeoutFor(Name, Index);

    public CallOptions Call(CancellationToken cancellationToken) =>
        new(deadline: DateTime.UtcNow + RequestTimeout, cancellationToken: cancellationToken);

    /// <summary>Waits for RegisterPlugin (registration timeout), then configures the plugin and learns its events.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var timeout = _host.Options.RegistrationTimeout;
        var closed = Closed.ContinueWith(_ => throw new HullException(ErrorKind.Unavailable,
            $"NRI plugin {Describe()} closed its connection before registering ({CloseReason})"), TaskScheduler.Default);
        try
        {
            var first = await Task.WhenAny(_registered.Task, closed).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            await first.ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new HullException(ErrorKind.DeadlineExceeded, $"NRI plugin {Describe()} did not register within {timeout.TotalSeconds:0.###}s");
        }

        var request = new NriPb.ConfigureRequest
        {
            Config = _host.ConfigFor(this),
            RuntimeName = HullInfo.RuntimeName,
            RuntimeVersion = HullInfo.Version,
            RegistrationTimeout = (long)_host.Options.RegistrationTimeout.TotalMilliseconds,
            RequestTimeout = (long)RequestTimeout.TotalMilliseconds,
            NRIVersion = NriHost.NriVersion,
        };
        NriPb.ConfigureResponse response;
        try
        {
            response = await Stub.ConfigureAsync(request, Call(cancellationToken)).ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"NRI plugin \"{FullName}\" failed to configure: {e.Status.Detail}", e);
        }
        int events = response.Events;
        if ((events & ~ValidEvents) != 0)
            throw new HullException(ErrorKind.InvalidArgument, $"NRI plugin \"{FullName}\" subscribed to invalid events 0x{events & ~ValidEvents:x}");
        Events = events == 0 ? ValidEvents : events;
    }

    private string Describe() => Name.Length > 0 ? $"\"{FullName}\"" : $"(pid {Pid})";

    public IReadOnlyList<string> EventNames() =>
        Enumerable.Range(1, (int)NriPb.Event.Last - 1).Select(i => (NriPb.Event)i).Where(Subscribes).Select(e => e.ToString()).ToArray();

    /// <summary>
    /// Sends the runtime's state, in chunks when one message would exceed ttrpc's limit (upstream's algorithm: shrink
    /// the counts by the ratio of limit to size, at most 90%, never below 8 objects). Returns the updates the plugin asked for.
    /// </summary>
    public async Task<IReadOnlyList<NriPb.ContainerUpdate>> SynchronizeAsync(IReadOnlyList<NriPb.PodSandbox> pods, IReadOnlyList<NriPb.Container> containers,
        CancellationToken cancellationToken)
    {
        const int minObjectsPerMessage = 8;
        int podStart = 0, containerStart = 0, podsPerMessage = pods.Count, containersPerMessage = containers.Count;
        while (true)
        {
            int podCount = Math.Min(podsPerMessage, pods.Count - podStart), containerCount = Math.Min(containersPerMessage, containers.Count - containerStart);
            var request = new NriPb.SynchronizeRequest
            {
                More = podStart + podCount < pods.Count || containerStart + containerCount < containers.Count,
            };
            request.Pods.AddRange(pods.Skip(podStart).Take(podCount));
            request.Containers.AddRange(containers.Skip(containerStart).Take(containerCount));
            NriPb.SynchronizeResponse response;
            try
            {
                response = await Stub.SynchronizeAsync(request, Call(cancellationToken)).ResponseAsync.ConfigureAwait(false);
            }
            catch (TtrpcMessageTooLargeException e)
            {
                if (podCount + containerCount <= minObjectsPerMessage)
                    throw new HullException(ErrorKind.ResourceExhausted, $"NRI plugin \"{FullName}\": failed to synchronize plugin with split messages");
                double factor = Math.Min(0.9, (double)e.MaximumLength / e.RejectedLength);
                podsPerMessage = (int)(podCount * factor);
                containersPerMessage = (int)(containerCount * factor);
                if (podsPerMessage + containersPerMessage < minObjectsPerMessage) podsPerMessage = containersPerMessage = minObjectsPerMessage / 2;
                continue;
            }
            catch (RpcException e)
            {
                throw new HullException(ErrorKind.FailedPrecondition, $"NRI plugin \"{FullName}\" failed to synchronize: {e.Status.Detail}", e);
            }
            if (!request.More) return response.Update;
            if (response.Update.Count > 0 || response.More != request.More)
                throw new HullException(ErrorKind.FailedPrecondition, $"NRI plugin \"{FullName}\" does not handle split sync requests");
            podStart += podCount;
            containerStart += containerCount;
        }
    }

    /// <summary>
    /// A notification event through its own RPC, or, for plugins built before NRI v0.12 (their ttrpc server answers
    /// the per-event RPCs UNIMPLEMENTED), through StateChange. As upstream (adaptation's origImplWrapper), the first
    /// UNIMPLEMENTED switches the whole plugin over, so later events cost one round trip, not two; the deprecation is
    /// recorded once per plugin.
    /// </summary>
    public async Task NotifyAsync<TResponse>(NriPb.Event e, Func<CallOptions, AsyncUnaryCall<TResponse>> rpc, NriPb.PodSandbox pod, NriPb.Container? container,
        CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _stateChangeOnly) == 0)
        {
            try
            {
                await rpc(Call(cancellationToken)).ResponseAsync.ConfigureAwait(false);
                return;
            }
            catch (RpcException x) when (x.StatusCode == StatusCode.Unimplemented)
            {
                if (Interlocked.Exchange(ref _stateChangeOnly, 1) == 0) _host.WarnStateChange(this, e);
            }
        }
        await Stub.StateChangeAsync(new NriPb.StateChangeEvent { Event = e, Pod = pod, Container = container }, Call(cancellationToken)).ResponseAsync.ConfigureAwait(false);
    }

    public override Task<NriPb.Empty> RegisterPlugin(NriPb.RegisterPluginRequest request, ServerCallContext context)
    {
        if (!IsPreInstalled)
        {
            try
            {
                PluginNames.CheckName(request.PluginName);
                PluginNames.CheckIndex(request.PluginIdx);
            }
            catch (HullException e)
            {
                _registered.TrySetException(new HullException(ErrorKind.InvalidArgument, $"NRI plugin registered with {e.Message}"));
                throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
            }
            Name = request.PluginName;
            Index = request.PluginIdx;
        }
        _host.Logger.LogInformation("NRI plugin {Name} registered (pid {Pid}, NRI version {Version})", FullName, Pid,
            request.NRIVersion.Length == 0 ? "unknown" : request.NRIVersion);
        _registered.TrySetResult();
        return Task.FromResult(new NriPb.Empty());
    }

    public override async Task<NriPb.UpdateContainersResponse> UpdateContainers(NriPb.UpdateContainersRequest request, ServerCallContext context)
    {
        _host.Logger.LogInformation("NRI plugin {Name} requested updates of {Count} containers and {Evictions} evictions",
            FullName, request.Update.Count, request.Evict.Count);
        var failed = await _host.Runtime.UpdateContainersAsync(
            request.Update.Select(ApiConversion.FromApi).ToArray(), request.Evict.Select(ApiConversion.FromApi).ToArray(),
            context.CancellationToken).ConfigureAwait(false);
        var response = new NriPb.UpdateContainersResponse();
        response.Failed.AddRange(failed.Select(ApiConversion.ToApi));
        return response;
    }

    public async ValueTask DisposeAsync()
    {
        _stop?.Invoke();
        await _client.DisposeAsync().ConfigureAwait(false);
        await _mux.DisposeAsync().ConfigureAwait(false);
        await _serving.ConfigureAwait(false);
    }
}
