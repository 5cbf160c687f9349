using System.Net.Sockets;
using System.Runtime.InteropServices;
using Hull.Config;
using Hull.Core.Deprecations;
using Hull.Core.Metadata;
using Hull.Core.Plugins;
using Hull.Cri;
using Hull.Streaming;
using Hull.Runtime.Cgroups;
using Hulld.Composition;
using Hulld.Telemetry;
using Microsoft.Extensions.Logging;

namespace Hulld;

internal sealed record DaemonOptions(string? ConfigPath, string? Address, string? Root, string? State, string? LogLevel, bool StrictConfig);

/// <summary>The composition root: load config, take the socket, serve until SIGTERM/SIGINT, drain, clean up.</summary>
internal static class Daemon
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    public static async Task<int> RunAsync(DaemonOptions options)
    {
        ConfigLoadResult loaded;
        try
        {
            loaded = ConfigCommandsLogic.LoadFileOrDefaults(options.ConfigPath, options.StrictConfig);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"hulld: {e.Message}");
            return 2;
        }
        var config = new ConfigOverrides(options.Root, options.State, options.Address, options.LogLevel).ApplyTo(loaded.Config);
        BoundOptions bound;
        try
        {
            bound = BoundOptions.Bind(config);
        }
        catch (Hull.Core.HullException e)
        {
            Console.Error.WriteLine($"hulld: {e.Message}");
            return 2;
        }
        using var loggerFactory = CreateLoggers(bound.Logging);
        var log = loggerFactory.CreateLogger("hulld");
        foreach (var d in loaded.Diagnostics)
            log.Log(d.Severity == DiagnosticSeverity.Error ? LogLevel.Error : LogLevel.Warning, "config: {Diagnostic}", d.ToString());
        if (loaded.HasErrors)
        {
            log.LogError("config has errors; not starting");
            return 2;
        }
        using var tracing = TracingSetup.Start(bound.Tracing, loggerFactory.CreateLogger("tracing"));

        PrepareNodeDirectory(bound.Root);
        PrepareNodeDirectory(bound.State);
        using var stateLock = TryLock(bound.State);
        if (stateLock is null)
        {
            log.LogError("another hulld is running with state directory {State}", bound.State);
            return 1;
        }
        // Two daemons sharing a root (content, snapshots, meta.db) would each garbage-collect the other's objects.
        bool sameDir = Path.GetFullPath(bound.Root).TrimEnd('/') == Path.GetFullPath(bound.State).TrimEnd('/');
        using var rootLock = sameDir ? null : TryLock(bound.Root);
        if (rootLock is null && !sameDir)
        {
            log.LogError("another hulld is running with root directory {Root}", bound.Root);
            return 1;
        }
        if (!await ClaimSocketAsync(bound.Socket.Address, log).ConfigureAwait(false)) return 1;

        using var metadata = OpenMetadata(bound.Root, loggerFactory, log);
        if (metadata is null) return 1;
        var deprecations = new DeprecationRegistry(new SqliteDeprecationStore(metadata), loggerFactory.CreateLogger<DeprecationRegistry>());
        foreach (var id in loaded.DeprecationIds) deprecations.Record(id);
        if (CgroupLayout.Detect().Mode != CgroupMode.Unified) deprecations.Record(DeprecationIds.CgroupV1);
        var plugins = new PluginRegistry();
        var identity = new DaemonIdentity(Guid.NewGuid().ToString(), Environment.ProcessId, DateTimeOffset.UtcNow, loaded.SourcePath ?? "");
        ImagesParts images;
        LifecycleParts lifecycle;
        StreamingServer streaming;
        try
        {
            images = await ImagesComposition.OpenAsync(bound, metadata, deprecations, loggerFactory, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Hull.Core.HullException e)
        {
            log.LogError("cannot open the image store: {Error}", e.Message);
            return 1;
        }
        using var registryClient = images.Registry;
        try
        {
            lifecycle = await LifecycleComposition.OpenAsync(bound, metadata, images, deprecations, loggerFactory, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Hull.Core.HullException e)
        {
            log.LogError("cannot recover pods and containers: {Error}", e.Message);
            return 1;
        }
        await using var lifecycleParts = lifecycle;
        try
        {
            streaming = await StreamingComposition.StartAsync(bound.Streaming, lifecycle, loggerFactory, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Hull.Core.HullException or IOException or System.Security.Cryptography.CryptographicException)
        {
            log.LogError("cannot start the streaming server: {Error}", e.Message);
            return 1;
        }
        await using var streamingServer = streaming;
        log.LogInformation("streaming server (exec, attach, port-forward) listening on {Address}", streaming.BaseAddress);
        await using var nodeConditions = NodeConditionsParts.Start(bound.NodeConditions, deprecations, loggerFactory);
        var admin = new AdminService(bound.Cri, identity, plugins, deprecations, images.Transfer, lifecycle.Nri, nodeConditions.Publisher, lifecycle.Pods);
        var runtime = new RuntimeService(bound.Cri, lifecycle.Pods, lifecycle.Containers, lifecycle.Events, deprecations, lifecycle.Cni.Default, streaming);
        var criLog = loggerFactory.CreateLogger("cri");
        await using var server = CriServer.Create(bound.Cri, runtime, images.Images, deprecations, admin, loggerFactory.CreateLogger("grpc"));
        server.CallCompleted = call =>
        {
            if (call.Status != Grpc.Core.StatusCode.OK)
                criLog.LogDebug("{Method} -> {Status}: {Message} ({Ms:F1} ms)", call.Method, call.Status, call.Message, call.Duration.TotalMilliseconds);
        };
        MetricsEndpoint? metrics;
        try
        {
            metrics = await MetricsEndpoint.StartAsync(bound.Metrics, bound.State, server, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Hull.Core.HullException or IOException)
        {
            log.LogError("cannot serve metrics on {Address}: {Error}", bound.Metrics.Address, e.Message);
            return 1;
        }
        await using var metricsEndpoint = metrics;
        if (metrics is not null) log.LogInformation("metrics on {Url}v1/metrics, debug pages on {Url}debug/", metrics.BaseAddress, metrics.BaseAddress);
        server.ListenUnix(bound.Socket.Address);
        File.SetUnixFileMode(bound.Socket.Address, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (bound.Socket.Uid != 0 || bound.Socket.Gid != 0) Hull.Linux.FileOwnership.Chown(bound.Socket.Address, bound.Socket.Uid, bound.Socket.Gid);
        RegisterPlugins(plugins, bound, metadata);

        var stop = new TaskCompletionSource<PosixSignal>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(c.Signal); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(c.Signal); });
        log.LogInformation("hulld {Version} serving CRI v1 on {Address} (root {Root}, state {State}, pid {Pid})",
            Hull.Core.HullInfo.Version, bound.Socket.Address, bound.Root, bound.State, Environment.ProcessId);

        var signal = await stop.Task.ConfigureAwait(false);
        log.LogInformation("{Signal}: draining connections (up to {Seconds} s)", signal, DrainTimeout.TotalSeconds);
        await server.StopAsync(DrainTimeout).ConfigureAwait(false);
        TryDelete(bound.Socket.Address);
        await streaming.DisposeAsync().ConfigureAwait(false);
        log.LogInformation("stopped");
        return 0;
    }

    /// <summary>Single-line console logs (or JSON, with <c>[debug] format = "json"</c>) at the configured level.</summary>
    internal static ILoggerFactory CreateLoggers(LoggingOptions logging) => LoggerFactory.Create(b =>
    {
        b.SetMinimumLevel(ParseLevel(logging.Level));
        if (logging.Format == "json")
            b.AddJsonConsole(o => { o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ"; o.UseUtcTimestamp = true; });
        else
            b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; });
    });

    /// <summary>What this build serves, and what it does not yet, as `hullctl plugins ls` reports it.</summary>
    private static void RegisterPlugins(PluginRegistry plugins, BoundOptions config, MetadataStore metadata)
    {
        var socket = new Dictionary<string, string> { ["address"] = config.Socket.Address };
        plugins.Ok("io.containerd.metadata.v1", "sqlite", new Dictionary<string, string> { ["path"] = metadata.Path });
        plugins.Ok("io.containerd.grpc.v1", "cri", socket, "io.containerd.cri.v1.runtime");
        plugins.Ok("io.containerd.cri.v1", "runtime", null, "io.containerd.metadata.v1.sqlite");
        plugins.Ok("io.containerd.content.v1", "content", new Dictionary<string, string> { ["root"] = Path.Combine(config.Root, "content") });
        plugins.Ok("io.containerd.snapshotter.v1", config.Images.Snapshotter, null, "io.containerd.metadata.v1.sqlite");
        plugins.Ok("io.containerd.transfer.v1", "local", null, "io.containerd.content.v1.content", "io.containerd.snapshotter.v1." + config.Images.Snapshotter);
        plugins.Ok("io.containerd.image-verifier.v1", "bindir", new Dictionary<string, string> { ["bin_dir"] = config.Images.Verifiers.BinDir });
        plugins.Ok("io.containerd.cri.v1", "images", null, "io.containerd.transfer.v1.local");
        plugins.Ok("io.hull.grpc.v1", "admin", socket, "io.containerd.metadata.v1.sqlite");
        plugins.Ok("io.containerd.podsandbox.controller.v1", "podsandbox", new Dictionary<string, string> { ["state"] = config.State },
            "io.containerd.metadata.v1.sqlite");
        plugins.Ok("io.hull.sandbox.controller.v1", "microvm", new Dictionary<string, string> { ["handlers"] = string.Join(",", config.MicroVm.Handlers.Keys) },
            "io.containerd.metadata.v1.sqlite");
        if (config.Nri.Disable)
            plugins.Add(new PluginInfo("io.containerd.nri.v1", "nri", PluginStatus.Skipped, "disabled in the config", [], new Dictionary<string, string>()));
        else
            plugins.Ok("io.containerd.nri.v1", "nri", new Dictionary<string, string> { ["socket_path"] = config.Nri.DisableConnections ? "" : config.Nri.SocketPath });
        if (config.Cdi is { } cdi)
            plugins.Ok("io.containerd.cdi.v1", "cdi", new Dictionary<string, string> { ["spec_dirs"] = string.Join(":", cdi.SpecDirectories) });
    }

    private static MetadataStore? OpenMetadata(string root, ILoggerFactory loggerFactory, ILogger log)
    {
        try
        {
            return MetadataStore.Open(root, loggerFactory.CreateLogger<MetadataStore>());
        }
        catch (Hull.Core.HullException e)
        {
            log.LogError("{Error}", e.Message);
            return null;
        }
    }

    /// <summary>
    /// Root and state are 0711 as containerd makes them: others may pass through to what is meant for them (a
    /// socket, a log) but list and read nothing (CVE-2021-41103). An existing directory is tightened too.
    /// </summary>
    private static void PrepareNodeDirectory(string dir)
    {
        const UnixFileMode traverseOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(dir, traverseOnly);
        File.SetUnixFileMode(dir, traverseOnly);
    }

    /// <summary>Root and state are each locked for the daemon's lifetime; a second hulld sharing either fails fast.</summary>
    private static FileStream? TryLock(string dir)
    {
        try
        {
            return new FileStream(Path.Combine(dir, "hulld.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Removes a stale socket file, but refuses when something still answers on it.</summary>
    private static async Task<bool> ClaimSocketAsync(string address, ILogger log)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(address)!);
        if (!File.Exists(address)) return true;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(address), timeout.Token).ConfigureAwait(false);
            log.LogError("socket {Address} is in use by another process; is another hulld running?", address);
            return false;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            log.LogInformation("removing stale socket {Address}", address);
            File.Delete(address);
            return true;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
    }

    private static LogLevel ParseLevel(string level) => level.ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "warn" or "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "fatal" or "panic" => LogLevel.Critical,
        _ => LogLevel.Information,
    };
}
