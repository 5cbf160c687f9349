using Hull.Core;
using Hull.Cdi;
using Hull.Config;
using Hull.Nri;
using Hull.Cri;
using Hull.Images.Reference;
using Hull.Images.Transfer;
using Hull.Images.Verifiers;
using Hull.Kube;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Cni;
using Hull.Sandbox.MicroVm;
using Hull.Sandbox.PodSandbox;

namespace Hulld.Composition;

/// <summary>The CRI socket: where it is and who owns it.</summary>
internal sealed record SocketOptions(string Address, int Uid, int Gid);

/// <summary>How hulld logs.</summary>
internal sealed record LoggingOptions(string Level, string Format);

/// <summary>The image side: which snapshotter, where hosts.toml files are, how pulls, pushes, imports and verifiers run.</summary>
internal sealed record ImagesOptions
{
    public required string Snapshotter { get; init; }
    /// <summary>overlayfs <c>slow_chown</c>: chown-copy layers for user-namespaced containers where idmapped mounts do not work.</summary>
    public bool SlowChown { get; init; }
    /// <summary>Directories of hosts.toml files, ':'-separated; empty means none.</summary>
    public required string HostsPath { get; init; }
    public required PullOptions Pull { get; init; }
    public required PushOptions Push { get; init; }
    public required ImportOptions Import { get; init; }
    public required VerifierOptions Verifiers { get; init; }
}

/// <summary>The streaming server's endpoint and TLS files (the certificate itself is loaded or made at start).</summary>
internal sealed record StreamingOptions(string Address, string Port, TimeSpan IdleTimeout, bool Tls, string TlsCertFile, string TlsKeyFile);

/// <summary>The Prometheus and debug endpoint: host:port, empty for none.</summary>
internal sealed record MetricsOptions(string Address);

/// <summary>
/// Tracing from containerd's (deprecated) config keys; the OTEL_* environment variables win over each of them
/// (see Hulld.Telemetry.TracingSetup).
/// </summary>
internal sealed record TracingOptions(string Endpoint, string Protocol, bool Insecure, string ServiceName, double SamplingRatio);

/// <summary>
/// Every setting hulld's libraries get, bound from the config model in one place: this is the only code below
/// <see cref="Daemon"/> that reads <see cref="HullConfig"/>, and each default lives in the config schema, not here.
/// A test sets every documented key and checks that it changes something here (test/Hulld.Tests).
/// </summary>
internal sealed record BoundOptions
{
    public required string Root { get; init; }
    public required string State { get; init; }
    public required SocketOptions Socket { get; init; }
    public required LoggingOptions Logging { get; init; }
    public required CriOptions Cri { get; init; }
    public required IReadOnlyList<RuntimeHandler> Handlers { get; init; }
    public required string DefaultHandler { get; init; }
    public required CniOptions Cni { get; init; }
    public required TaskOptions Tasks { get; init; }
    public required SpecBuilderOptions Specs { get; init; }
    public required PodSandboxOptions PodSandbox { get; init; }
    public required MicroVmSandboxOptions MicroVm { get; init; }
    public required ImagesOptions Images { get; init; }
    public required StreamingOptions Streaming { get; init; }
    /// <summary>Null when CDI is off (<c>enable_cdi = false</c>).</summary>
    public required CdiRegistryOptions? Cdi { get; init; }
    public required NriOptions Nri { get; init; }
    public required MetricsOptions Metrics { get; init; }
    public required TracingOptions Tracing { get; init; }
    public required NodeConditionsOptions NodeConditions { get; init; }

    public static BoundOptions Bind(HullConfig config)
    {
        var runtime = config.Runtime;
        var handlers = runtime.Runtimes.Select(r => Handler(r.Key, r.Value, config)).ToList();
        var defaultHandler = handlers.FirstOrDefault(h => h.Name == runtime.DefaultRuntimeName);
        var pinned = config.Images.PinnedImages.Values
            .Select(r => ImageReference.TryParseDockerRef(r, out var parsed) ? parsed.ToString() : r)
            .ToHashSet(StringComparer.Ordinal);
        // The CRI plugin's registry.config_path wins; the transfer service's is the fallback, as in containerd.
        string hostsPath = config.Images.RegistryConfigPath.Length > 0 ? config.Images.RegistryConfigPath : config.Transfer.ConfigPath;
        return new BoundOptions
        {
            Root = config.Root,
            State = config.State,
            Socket = new SocketOptions(config.Grpc.Address, config.Grpc.Uid, config.Grpc.Gid),
            Logging = new LoggingOptions(config.Debug.Level, config.Debug.Format),
            Cri = new CriOptions
            {
                Root = config.Root,
                State = config.State,
                MaxReceiveMessageSize = config.Grpc.MaxRecvMessageSize,
                MaxSendMessageSize = config.Grpc.MaxSendMessageSize,
                IgnoredDeprecations = runtime.IgnoreDeprecationWarnings,
                Cni = new CniStatusOptions(runtime.Cni.BinDirs, runtime.Cni.ConfDir),
            },
            Handlers = handlers,
            DefaultHandler = runtime.DefaultRuntimeName,
            Cni = new CniOptions
            {
                ConfDir = runtime.Cni.ConfDir,
                BinDirs = runtime.Cni.BinDirs,
                MaxConfNum = runtime.Cni.MaxConfNum,
                SetupSerially = runtime.Cni.SetupSerially,
                IpPref = runtime.Cni.IpPref,
                UseInternalLoopback = runtime.Cni.UseInternalLoopback,
                CacheDir = Path.Combine(config.Root, "cni"),
            },
            Tasks = new TaskOptions
            {
                StateDirectory = config.State,
                RuntimePath = defaultHandler?.RuntimeBinary ?? Defaults.RuntimeName,
                RunDetachedHelper = HelperPath("hull-run-detached"),
            },
            Specs = new SpecBuilderOptions
            {
                RestrictOomScoreAdj = runtime.RestrictOomScoreAdj,
                DefaultSeccompProfile = runtime.UnsetSeccompProfile is "runtime/default" or "RuntimeDefault"
                    ? SecurityProfile.RuntimeDefault : SecurityProfile.Unconfined,
                TolerateMissingHugetlbController = runtime.TolerateMissingHugetlbController,
                DisableHugetlbController = runtime.DisableHugetlbController,
                DisableAppArmor = runtime.DisableApparmor,
                DisableProcMount = runtime.DisableProcMount,
                DeviceOwnershipFromSecurityContext = runtime.DeviceOwnershipFromSecurityContext,
                ImageVolumes = runtime.IgnoreImageDefinedVolumes ? ImageVolumeMode.Ignore : ImageVolumeMode.Mkdir,
            },
            PodSandbox = new PodSandboxOptions
            {
                StateDirectory = config.State,
                RootDirectory = config.Root,
                SandboxImage = config.Images.PinnedSandboxImage,
                InfraHelper = HelperPath("hull-infra"),
                EnableUnprivilegedPorts = runtime.EnableUnprivilegedPorts,
                EnableUnprivilegedIcmp = runtime.EnableUnprivilegedIcmp,
            },
            MicroVm = new MicroVmSandboxOptions
            {
                StateDirectory = config.State,
                Handlers = runtime.Runtimes.Where(r => r.Value.Sandboxer == MicroVmSandboxController.SandboxerName)
                    .ToDictionary(r => r.Key, r => MicroVmOf(r.Value.MicroVm), StringComparer.Ordinal),
            },
            Images = new ImagesOptions
            {
                Snapshotter = config.Images.Snapshotter,
                SlowChown = config.Overlayfs.SlowChown,
                HostsPath = hostsPath,
                Pull = new PullOptions
                {
                    MaxConcurrentDownloads = config.Images.MaxConcurrentDownloads,
                    ProgressTimeout = config.Images.ImagePullProgressTimeout,
                    PinnedNames = pinned,
                },
                Push = new PushOptions { MaxConcurrentUploads = config.Transfer.MaxConcurrentUploadedLayers },
                Import = new ImportOptions { PinnedNames = pinned },
                Verifiers = new VerifierOptions
                {
                    BinDir = config.ImageVerifier.BinDir,
                    MaxVerifiers = config.ImageVerifier.MaxVerifiers,
                    PerVerifierTimeout = config.ImageVerifier.PerVerifierTimeout,
                },
            },
            Streaming = new StreamingOptions(config.Server.StreamServerAddress, config.Server.StreamServerPort, config.Server.StreamIdleTimeout,
                config.Server.EnableTlsStreaming, config.Server.TlsCertFile, config.Server.TlsKeyFile),
            Cdi = runtime.EnableCdi ? new CdiRegistryOptions { SpecDirectories = runtime.CdiSpecDirs } : null,
            Nri = NriOf(config.Nri),
            Metrics = new MetricsOptions(config.Metrics.Address),
            Tracing = new TracingOptions(config.Otlp.Endpoint, config.Otlp.Protocol, config.Otlp.Insecure, config.Tracing.ServiceName,
                config.Tracing.SamplingRatio),
            NodeConditions = new NodeConditionsOptions
            {
                Enable = config.NodeConditions.Enable,
                Kubeconfig = config.NodeConditions.Kubeconfig,
                NodeName = config.NodeConditions.NodeName,
                ResyncInterval = config.NodeConditions.ResyncInterval,
                // One list for both places the condition appears (CRI Status and the Node).
                IgnoredDeprecations = runtime.IgnoreDeprecationWarnings,
            },
        };
    }

    /// <summary>
    /// One of Hull's C helpers (hull-infra, hull-run-detached), which the build puts next to hulld; "" where it is missing
    /// (hulld then does without: the infra process runs under runc, a container's start runs runc create, then start).
    /// </summary>
    private static string HelperPath(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, name);
        return File.Exists(path) ? path : "";
    }

    /// <summary>The VMs of one handler whose sandboxer is microvm.</summary>
    private static MicroVmOptions MicroVmOf(MicroVmConfig m) => new()
    {
        QemuPath = m.QemuPath,
        KernelPath = m.KernelPath,
        InitrdPath = m.InitrdPath,
        MemoryMiB = m.MemoryMib,
        Vcpus = m.Vcpus,
        Accel = m.Accel switch { "kvm" => MicroVmAccel.Kvm, "tcg" => MicroVmAccel.Tcg, _ => MicroVmAccel.Auto },
        BootTimeout = m.BootTimeout,
    };

    private static NriOptions NriOf(NriConfig nri) => new()
    {
        Disable = nri.Disable,
        DisableConnections = nri.DisableConnections,
        SocketPath = nri.SocketPath,
        PluginPath = nri.PluginPath,
        PluginConfigPath = nri.PluginConfigPath,
        RegistrationTimeout = nri.PluginRegistrationTimeout,
        RequestTimeout = nri.PluginRequestTimeout,
        // The schema checked that each value is a duration.
        PluginRequestTimeouts = nri.PluginRequestTimeouts.ToDictionary(t => t.Key, t => GoDuration.TryParse(t.Value, out var d, out _) ? d : TimeSpan.Zero,
            StringComparer.Ordinal),
        RequiredPlugins = nri.RequiredPlugins,
        DefaultValidator = nri.DefaultValidator.Enable
            ? new DefaultValidatorOptions
            {
                Enable = true,
                RejectOciHookAdjustment = nri.DefaultValidator.RejectOciHookAdjustment,
                RejectRuntimeDefaultSeccompAdjustment = nri.DefaultValidator.RejectRuntimeDefaultSeccompAdjustment,
                RejectUnconfinedSeccompAdjustment = nri.DefaultValidator.RejectUnconfinedSeccompAdjustment,
                RejectCustomSeccompAdjustment = nri.DefaultValidator.RejectCustomSeccompAdjustment,
                RejectNamespaceAdjustment = nri.DefaultValidator.RejectNamespaceAdjustment,
                RejectSysctlAdjustment = nri.DefaultValidator.RejectSysctlAdjustment,
                RequiredPlugins = nri.DefaultValidator.RequiredPlugins,
                TolerateMissingPluginsAnnotation = nri.DefaultValidator.TolerateMissingPluginsAnnotation.Length > 0
                    ? nri.DefaultValidator.TolerateMissingPluginsAnnotation : null,
            }
            : null,
    };

    /// <summary>One runtime handler with every value final: its own setting, else the global one.</summary>
    private static RuntimeHandler Handler(string name, RuntimeHandlerConfig h, HullConfig config) => new()
    {
        Name = name,
        Sandboxer = h.Sandboxer,
        RuntimeType = h.RuntimeType,
        RuntimeBinary = h.BinaryName.Length > 0 ? h.BinaryName : h.RuntimePath.Length > 0 ? h.RuntimePath : Defaults.RuntimeName,
        RuntimeRoot = h.Root,
        CgroupDriver = h.SystemdCgroup ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
        CniConfDir = h.CniConfDir.Length > 0 ? h.CniConfDir : config.Runtime.Cni.ConfDir,
        CniMaxConfNum = h.CniMaxConfNum > 0 ? h.CniMaxConfNum : config.Runtime.Cni.MaxConfNum,
        Snapshotter = h.Snapshotter.Length > 0 ? h.Snapshotter : config.Images.Snapshotter,
        PodAnnotations = h.PodAnnotations,
        PrivilegedWithoutHostDevices = h.PrivilegedWithoutHostDevices,
        PrivilegedWithoutHostDevicesAllDevicesAllowed = h.PrivilegedWithoutHostDevicesAllDevicesAllowed,
    };
}
