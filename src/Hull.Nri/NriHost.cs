using System.Net.Sockets;
using Grpc.Core;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Runtime.Spec;
using Microsoft.Extensions.Logging;
using NriPb = Hull.Api.Nri; // not "Pb": Google.Protobuf 3.36 has a global namespace of that name

namespace Hull.Nri;

/// <summary>
/// Hull's NRI adaptation (containerd/nri pkg/adaptation): runs pre-installed plugins, accepts plugins on the socket,
/// and relays every pod and container event to the plugins subscribed to it, in index order. CreateContainer's
/// adjustments are merged with owner tracking and validated; UpdateContainer's and StopContainer's updates merged.
/// <para>
/// Failures: a plugin that answers an event with an error fails the event's call naming it. A plugin that is gone or
/// times out is dropped and the event goes on, as upstream does, unless it is listed in
/// <see cref="NriOptions.RequiredPlugins"/>: then the call fails naming it, and so does every event while it is not
/// connected. No lock is held across plugin calls: each event works on a snapshot of the plugin list.
/// </para>
/// </summary>
public sealed class NriHost : IAsyncDisposable
{
    /// <summary>The NRI version Hull implements, sent to plugins in Configure.</summary>
    public const string NriVersion = "v0.12.2";

    private readonly DeprecationRegistry? _deprecations;
    private readonly DefaultValidator? _defaultValidator;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, string> _launchedConfigs = new(StringComparer.Ordinal);
    private readonly List<Task> _background = [];
    private NriPlugin[] _plugins = [];
    private Socket? _listener;

    public NriHost(NriOptions options, ILogger logger, DeprecationRegistry? deprecations = null)
    {
        Options = options;
        Logger = logger;
        _deprecations = deprecations;
        if (options.DefaultValidator is { Enable: true } validator) _defaultValidator = new DefaultValidator(validator);
    }

    public NriOptions Options { get; }
    /// <summary>The runtime plugins synchronize with and update; given at <see cref="StartAsync"/>, once the lifecycle has recovered.</summary>
    internal INriRuntime Runtime => _runtime ?? throw new InvalidOperationException("NRI was not started");

    private INriRuntime? _runtime;
    internal ILogger Logger { get; }

    public bool Enabled => !Options.Disable;

    /// <summary>Launches pre-installed plugins, synchronizes them with <paramref name="runtime"/>, then opens the socket for external ones.</summary>
    public async Task StartAsync(INriRuntime runtime, CancellationToken cancellationToken)
    {
        _runtime = runtime;
        if (!Enabled)
        {
            Logger.LogInformation("NRI is disabled");
            return;
        }
        foreach (var executable in PluginLauncher.Discover(Options))
        {
            lock (_launchedConfigs) _launchedConfigs[$"{executable.Index}-{executable.Name}"] = executable.Config;
            try
            {
                var (trunk, pid, kill) = PluginLauncher.Launch(executable, Logger);
                await ConnectAsync(NriPlugin.PreInstalled(this, trunk, executable.Index, executable.Name, pid, kill), cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                Logger.LogWarning("NRI: failed to start pre-installed plugin {Name}: {Error}", $"{executable.Index}-{executable.Name}", e.Message);
            }
        }
        if (Options.DisableConnections)
        {
            Logger.LogInformation("NRI: connections from external plugins are disabled");
            return;
        }
        await StartListenerAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task StartListenerAsync(CancellationToken cancellationToken)
    {
        var path = Options.SocketPath;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // A socket someone still answers on belongs to another runtime on this node: leave it to them (and say so)
        // rather than steal it; a stale one a crash left is replaced.
        if (File.Exists(path) && await AnswersAsync(path, cancellationToken).ConfigureAwait(false))
        {
            Logger.LogWarning("NRI: {Path} is in use by another process; external plugins cannot connect to this hulld (pre-installed ones still run)", path);
            return;
        }
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(16);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // Another process bound it between the probe and here (two runtimes started together): theirs, as above.
            listener.Dispose();
            Logger.LogWarning("NRI: {Path} was just taken by another process; external plugins cannot connect to this hulld (pre-installed ones still run)", path);
            return;
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot listen for NRI plugins on {path}: {e.Message}", e);
        }
        _listener = listener;
        _listenerInode = Hull.Linux.FileStatus.TryGet(path)?.Inode;
        Logger.LogInformation("NRI: accepting plugin connections on {Path}", path);
        lock (_background) _background.Add(AcceptLoopAsync(listener));
    }

    private ulong? _listenerInode;

    private static async Task<bool> AnswersAsync(string path, CancellationToken cancellationToken)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            int pid = PeerPid(connection);
            _ = Task.Run(async () =>
            {
                try
                {
                    await ConnectAsync(NriPlugin.External(this, new NetworkStream(connection, ownsSocket: true), pid), _stopping.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is HullException or OperationCanceledException)
                {
                    Logger.LogWarning("NRI: external plugin (pid {Pid}) not connected: {Error}", pid, e.Message);
                }
            });
        }
    }

    private static int PeerPid(Socket socket)
    {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } via SO_PEERCRED (17).
        var ucred = new byte[12];
        try
        {
            socket.GetRawSocketOption(1, 17, ucred);
            return BitConverter.ToInt32(ucred, 0);
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    /// <summary>Registers, configures and synchronizes a plugin, then adds it to the event order.</summary>
    private async Task ConnectAsync(NriPlugin plugin, CancellationToken cancellationToken)
    {
        try
        {
            await plugin.StartAsync(cancellationToken).ConfigureAwait(false);
            var snapshot = await Runtime.SnapshotAsync(cancellationToken).ConfigureAwait(false);
            var updates = await plugin.SynchronizeAsync(snapshot.Pods.Select(ApiConversion.ToApi).ToArray(),
                snapshot.Containers.Select(ApiConversion.ToApi).ToArray(), cancellationToken).ConfigureAwait(false);
            if (updates.Count > 0)
                await Runtime.UpdateContainersAsync(updates.Select(ApiConversion.FromApi).ToArray(), [], cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await plugin.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        lock (_launchedConfigs)
        {
            var replaced = _plugins.Where(p => p.FullName == plugin.FullName).ToArray();
            _plugins = _plugins.Except(replaced).Append(plugin).OrderBy(p => p.Index, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal).ToArray();
            foreach (var old in replaced) _ = old.DisposeAsync().AsTask();
        }
        _ = plugin.Closed.ContinueWith(_ => Remove(plugin, plugin.CloseReason ?? "connection closed"), TaskScheduler.Default);
        Logger.LogInformation("NRI plugin {Name} connected and synchronized, subscribed to {Events}", plugin.FullName, string.Join(",", plugin.EventNames()));
    }

    private void Remove(NriPlugin plugin, string reason)
    {
        bool removed;
        lock (_launchedConfigs)
        {
            removed = _plugins.Contains(plugin);
            _plugins = _plugins.Where(p => p != plugin).ToArray();
        }
        if (!removed) return;
        plugin.LastError ??= reason;
        Logger.LogWarning("NRI plugin {Name} disconnected: {Reason}", plugin.FullName, reason);
        _ = plugin.DisposeAsync().AsTask();
    }

    internal string ConfigFor(NriPlugin plugin)
    {
        lock (_launchedConfigs)
            return _launchedConfigs.TryGetValue(plugin.FullName, out var config) ? config : "";
    }

    internal void WarnStateChange(NriPlugin plugin, NriPb.Event e)
    {
        var message = $"NRI plugin \"{plugin.FullName}\" does not implement NRI v0.12's per-event RPCs (it answered {e} with UNIMPLEMENTED), " +
            "so its events go through the deprecated StateChange; update it to NRI v0.12 or newer";
        if (_deprecations is not null) _deprecations.Record(DeprecationIds.NriPluginInterface, message);
        else Logger.LogWarning("{Message}", message);
    }

    /// <summary>Whether any plugin is connected or required: when not, callers may spare building event payloads.</summary>
    public bool Active => Enabled && (Volatile.Read(ref _plugins).Length > 0 || Options.RequiredPlugins.Count > 0);

    /// <summary>The connected plugins in event order, for <c>hullctl nri ls</c>.</summary>
    public IReadOnlyList<NriPluginInfo> ListPlugins() =>
        Volatile.Read(ref _plugins).Select(p => new NriPluginInfo(p.Name, p.Index, p.IsPreInstalled, p.Pid, p.EventNames(), p.LastError)).ToArray();

    // ---- events ----------------------------------------------------------------------------------------------

    public Task RunPodSandboxAsync(NriPod pod, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.RunPodSandbox, pod, null, (p, api, _, o) => p.Stub.RunPodSandboxAsync(new NriPb.RunPodSandboxRequest { Pod = api }, o), cancellationToken);

    public Task PostUpdatePodSandboxAsync(NriPod pod, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.PostUpdatePodSandbox, pod, null, (p, api, _, o) => p.Stub.PostUpdatePodSandboxAsync(new NriPb.PostUpdatePodSandboxRequest { Pod = api }, o), cancellationToken);

    public Task StopPodSandboxAsync(NriPod pod, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.StopPodSandbox, pod, null, (p, api, _, o) => p.Stub.StopPodSandboxAsync(new NriPb.StopPodSandboxRequest { Pod = api }, o), cancellationToken);

    public Task RemovePodSandboxAsync(NriPod pod, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.RemovePodSandbox, pod, null, (p, api, _, o) => p.Stub.RemovePodSandboxAsync(new NriPb.RemovePodSandboxRequest { Pod = api }, o), cancellationToken);

    public Task PostCreateContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.PostCreateContainer, pod, container, (p, api, c, o) => p.Stub.PostCreateContainerAsync(new NriPb.PostCreateContainerRequest { Pod = api, Container = c }, o), cancellationToken);

    public Task StartContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.StartContainer, pod, container, (p, api, c, o) => p.Stub.StartContainerAsync(new NriPb.StartContainerRequest { Pod = api, Container = c }, o), cancellationToken);

    public Task PostStartContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.PostStartContainer, pod, container, (p, api, c, o) => p.Stub.PostStartContainerAsync(new NriPb.PostStartContainerRequest { Pod = api, Container = c }, o), cancellationToken);

    public Task PostUpdateContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.PostUpdateContainer, pod, container, (p, api, c, o) => p.Stub.PostUpdateContainerAsync(new NriPb.PostUpdateContainerRequest { Pod = api, Container = c }, o), cancellationToken);

    public Task RemoveContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default) =>
        NotifyAsync(NriPb.Event.RemoveContainer, pod, container, (p, api, c, o) => p.Stub.RemoveContainerAsync(new NriPb.RemoveContainerRequest { Pod = api, Container = c }, o), cancellationToken);

    /// <summary>UpdatePodSandbox has no StateChange form; plugins get the pod's new overhead and resources.</summary>
    public async Task UpdatePodSandboxAsync(NriPod pod, OciResources? overhead, OciResources? resources, CancellationToken cancellationToken = default)
    {
        var request = new NriPb.UpdatePodSandboxRequest { Pod = ApiConversion.ToApi(pod), OverheadLinuxResources = ApiConversion.ToApi(overhead), LinuxResources = ApiConversion.ToApi(resources) };
        foreach (var plugin in Plugins(NriPb.Event.UpdatePodSandbox))
            await InvokeAsync(plugin, NriPb.Event.UpdatePodSandbox, o => plugin.Stub.UpdatePodSandboxAsync(request, o).ResponseAsync, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// CreateContainer: each subscribed plugin in turn sees the container as the plugins before it left it; their
    /// adjustments are merged (two plugins setting one field fail naming both), then validators check the result.
    /// </summary>
    public async Task<NriCreateResult> CreateContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default)
    {
        var request = new NriPb.CreateContainerRequest { Pod = ApiConversion.ToApi(pod), Container = ApiConversion.ToApi(container) };
        var pristine = request.Container.Clone();
        var merger = AdjustmentMerger.ForCreate(request);
        var plugins = Plugins(NriPb.Event.CreateContainer);
        foreach (var plugin in plugins)
        {
            var response = await InvokeAsync(plugin, NriPb.Event.CreateContainer, o => plugin.Stub.CreateContainerAsync(request, o).ResponseAsync, cancellationToken).ConfigureAwait(false);
            if (response is null) continue;
            merger.Adjust(response.Adjust, plugin.FullName);
            merger.Update(response.Update, plugin.FullName);
            merger.Evictions.AddRange(response.Evict);
        }
        await ValidateAsync(request.Pod, pristine, merger, plugins, cancellationToken).ConfigureAwait(false);
        return new NriCreateResult(
            ApiConversion.FromApi(merger.Adjustment, merger.Owners, container.Id, container.Name),
            merger.Updates.Select(ApiConversion.FromApi).ToArray(),
            merger.Evictions.Select(ApiConversion.FromApi).ToArray());
    }

    private async Task ValidateAsync(NriPb.PodSandbox pod, NriPb.Container pristine, AdjustmentMerger merger, IReadOnlyList<NriPlugin> consulted,
        CancellationToken cancellationToken)
    {
        var validators = Plugins(NriPb.Event.ValidateContainerAdjustment);
        if (validators.Count == 0 && _defaultValidator is null) return;
        var request = new NriPb.ValidateContainerAdjustmentRequest { Pod = pod, Container = pristine, Adjust = merger.Adjustment, Owners = merger.Owners.Message };
        request.Update.AddRange(merger.Updates);
        request.Plugins.AddRange(consulted.Select(p => new NriPb.PluginInstance { Name = p.Name, Index = p.Index }));

        if (_defaultValidator?.Validate(request, merger.Owners) is { } reason)
            throw new HullException(ErrorKind.FailedPrecondition, $"validator \"{DefaultValidator.Name}\" rejected container adjustment, reason: {reason}");
        var results = await Task.WhenAll(validators.Select(async v =>
            (Validator: v, Response: await InvokeAsync(v, NriPb.Event.ValidateContainerAdjustment,
                o => v.Stub.ValidateContainerAdjustmentAsync(request, o).ResponseAsync, cancellationToken, dropOnFailure: false).ConfigureAwait(false)))).ConfigureAwait(false);
        foreach (var (validator, response) in results)
            if (response is { Reject: true })
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"validator \"{validator.FullName}\" rejected container adjustment, reason: {(response.Reason.Length == 0 ? "unknown rejection reason" : response.Reason)}");
    }

    /// <summary>UpdateContainer: plugins may change the requested resources and update other containers.</summary>
    public async Task<NriUpdateResult> UpdateContainerAsync(NriPod pod, NriContainer container, OciResources resources, CancellationToken cancellationToken = default)
    {
        var request = new NriPb.UpdateContainerRequest { Pod = ApiConversion.ToApi(pod), Container = ApiConversion.ToApi(container), LinuxResources = ApiConversion.ToApi(resources) };
        var merger = AdjustmentMerger.ForUpdate(request);
        foreach (var plugin in Plugins(NriPb.Event.UpdateContainer))
        {
            var response = await InvokeAsync(plugin, NriPb.Event.UpdateContainer, o => plugin.Stub.UpdateContainerAsync(request, o).ResponseAsync, cancellationToken).ConfigureAwait(false);
            if (response is null) continue;
            merger.Update(response.Update, plugin.FullName);
            merger.Evictions.AddRange(response.Evict);
        }
        return new NriUpdateResult(
            merger.UpdatedResources is { } r ? ApiConversion.FromApi(r) : null,
            merger.Updates.Where(u => u.ContainerId != container.Id).Select(ApiConversion.FromApi).ToArray(),
            merger.Evictions.Select(ApiConversion.FromApi).ToArray());
    }

    /// <summary>StopContainer: plugins may update the remaining containers.</summary>
    public async Task<IReadOnlyList<NriContainerUpdate>> StopContainerAsync(NriPod pod, NriContainer container, CancellationToken cancellationToken = default)
    {
        var request = new NriPb.StopContainerRequest { Pod = ApiConversion.ToApi(pod), Container = ApiConversion.ToApi(container) };
        var merger = AdjustmentMerger.ForStop();
        foreach (var plugin in Plugins(NriPb.Event.StopContainer))
        {
            var response = await InvokeAsync(plugin, NriPb.Event.StopContainer, o => plugin.Stub.StopContainerAsync(request, o).ResponseAsync, cancellationToken).ConfigureAwait(false);
            if (response is not null) merger.Update(response.Update, plugin.FullName);
        }
        return merger.Updates.Select(ApiConversion.FromApi).ToArray();
    }

    private async Task NotifyAsync<TResponse>(NriPb.Event e, NriPod pod, NriContainer? container,
        Func<NriPlugin, NriPb.PodSandbox, NriPb.Container?, CallOptions, AsyncUnaryCall<TResponse>> rpc, CancellationToken cancellationToken)
    {
        var plugins = Plugins(e);
        if (plugins.Count == 0) return;
        var apiPod = ApiConversion.ToApi(pod);
        var apiContainer = container is null ? null : ApiConversion.ToApi(container);
        foreach (var plugin in plugins)
            await InvokeAsync(plugin, e, async _ =>
            {
                await plugin.NotifyAsync(e, o => rpc(plugin, apiPod, apiContainer, o), apiPod, apiContainer, cancellationToken).ConfigureAwait(false);
                return new NriPb.Empty();
            }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The plugins subscribed to <paramref name="e"/>, in order; fails naming the first required plugin that is not connected.
    /// </summary>
    private IReadOnlyList<NriPlugin> Plugins(NriPb.Event e)
    {
        if (!Enabled) return [];
        var plugins = Volatile.Read(ref _plugins);
        foreach (var required in Options.RequiredPlugins)
            if (!plugins.Any(p => p.Matches(required)))
                throw new HullException(ErrorKind.FailedPrecondition, $"required NRI plugin \"{required}\" is not connected, so {e} cannot proceed");
        return plugins.Where(p => p.Subscribes(e)).ToArray();
    }

    private bool IsRequired(NriPlugin plugin) => Options.RequiredPlugins.Any(plugin.Matches);

    /// <summary>
    /// One plugin call with its timeout. A plugin error fails the event naming the plugin. A plugin that is gone or
    /// timed out is dropped (the event goes on without it, as upstream does) unless it is required.
    /// </summary>
    private async Task<T?> InvokeAsync<T>(NriPlugin plugin, NriPb.Event e, Func<CallOptions, Task<T>> call, CancellationToken cancellationToken,
        bool dropOnFailure = true) where T : class
    {
        using var activity = NriTelemetry.Source.StartActivity($"NRI {e}");
        activity?.SetTag("nri.plugin", plugin.FullName);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        string result = "error";
        try
        {
            var response = await call(plugin.Call(cancellationToken)).ConfigureAwait(false);
            result = "ok";
            return response;
        }
        catch (RpcException x) when (x.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && !cancellationToken.IsCancellationRequested)
        {
            bool timedOut = x.StatusCode == StatusCode.DeadlineExceeded;
            result = timedOut ? "timeout" : "gone";
            string what = timedOut ? $"did not answer {e} within {plugin.RequestTimeout.TotalSeconds:0.###}s" : $"is gone ({x.Status.Detail})";
            plugin.LastError = $"{e}: {what}";
            if (IsRequired(plugin) || !dropOnFailure)
                throw new HullException(timedOut ? ErrorKind.DeadlineExceeded : ErrorKind.Unavailable,
                    $"{(IsRequired(plugin) ? "required " : "")}NRI plugin \"{plugin.FullName}\" {what}", x);
            Logger.LogError("NRI: closing plugin {Name}, it {What}", plugin.FullName, what);
            Remove(plugin, plugin.LastError);
            return null;
        }
        catch (RpcException x) when (x.StatusCode == StatusCode.Cancelled || cancellationToken.IsCancellationRequested)
        {
            result = "cancelled";
            throw new OperationCanceledException($"{e} cancelled while NRI plugin \"{plugin.FullName}\" handled it", x, cancellationToken);
        }
        catch (RpcException x)
        {
            plugin.LastError = $"{e}: {x.Status.Detail}";
            throw new HullException(ErrorKind.FailedPrecondition, $"NRI plugin \"{plugin.FullName}\" failed {e}: {x.Status.Detail}", x);
        }
        finally
        {
            NriTelemetry.Called(plugin.FullName, e.ToString(), result, started);
            if (result != "ok") activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, result);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _listener?.Dispose();
        // Only our own socket: another hulld may have taken the path over since.
        if (_listener is not null && Hull.Linux.FileStatus.TryGet(Options.SocketPath)?.Inode == _listenerInode) File.Delete(Options.SocketPath);
        NriPlugin[] plugins;
        lock (_launchedConfigs)
        {
            plugins = _plugins;
            _plugins = [];
        }
        foreach (var plugin in plugins) await plugin.DisposeAsync().ConfigureAwait(false);
        Task[] background;
        lock (_background) background = _background.ToArray();
        await Task.WhenAll(background).ConfigureAwait(false);
    }
}
