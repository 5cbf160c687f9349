using Hull.Core;
using System.Globalization;
using Hull.Config.TomlFiles;
using Tomlyn.Model;
using static Hull.Config.Schema.SchemaBuilders;

namespace Hull.Config.Schema;

/// <summary>
/// Every key of Hull's config file, once: its TOML path, type, description and the model property it
/// binds to (whose initializer holds the default). The binder, the unknown-key check, the
/// <c>hulld config dump</c> writer and docs/configuration.md are all driven by this list.
/// Keys and defaults follow containerd 2.x (internal/cri/config, plugins/*, cmd/containerd/server/config).
/// </summary>
public static class ConfigSchema
{
    public const string RuntimePlugin = "io.containerd.cri.v1.runtime";
    public const string ImagesPlugin = "io.containerd.cri.v1.images";
    public const string ServerPlugin = "io.containerd.grpc.v1.cri";
    public const string NriPlugin = "io.containerd.nri.v1.nri";
    public const string TransferPlugin = "io.containerd.transfer.v1.local";
    public const string ImageVerifierPlugin = "io.containerd.image-verifier.v1.bindir";
    public const string OverlayfsPlugin = "io.containerd.snapshotter.v1.overlayfs";
    public const string OtlpPlugin = "io.containerd.tracing.processor.v1.otlp";
    public const string TracingPlugin = "io.containerd.internal.v1.tracing";
    public const string NodeConditionsPlugin = "io.hull.kube.v1.node-conditions";

    /// <summary>Runtime types Hull runs (conmon + the OCI runtime in <c>options.BinaryName</c>).</summary>
    public static readonly IReadOnlyList<string> RuncRuntimeTypes = [Defaults.RuntimeType, "io.containerd.runc.v1", "io.containerd.runtime.v1.linux"];

    /// <summary>
    /// Plugin IDs of containerd 1.x/2.x that Hull has no counterpart for. Their sections are accepted and
    /// ignored (one warning lists them); any other plugin ID is reported as unknown.
    /// </summary>
    public static readonly IReadOnlyList<string> ContainerdOnlyPlugins =
    [
        "io.containerd.content.v1.content",
        "io.containerd.differ.v1.erofs",
        "io.containerd.event.v1.exchange",
        "io.containerd.gc.v1.scheduler",
        "io.containerd.grpc.v1.healthcheck",
        "io.containerd.grpc.v1.introspection",
        "io.containerd.internal.v1.opt",
        "io.containerd.internal.v1.restart",
        "io.containerd.lease.v1.manager",
        "io.containerd.metadata.v1.bolt",
        "io.containerd.monitor.container.v1.restart",
        "io.containerd.monitor.task.v1.cgroups",
        "io.containerd.monitor.v1.cgroups",
        "io.containerd.podsandbox.controller.v1.podsandbox",
        "io.containerd.runtime.v1.linux",
        "io.containerd.runtime.v2.task",
        "io.containerd.sandbox.controller.v1.shim",
        "io.containerd.service.v1.diff-service",
        "io.containerd.service.v1.tasks-service",
        "io.containerd.shim.v1.manager",
        "io.containerd.snapshotter.v1.aufs",
        "io.containerd.snapshotter.v1.blockfile",
        "io.containerd.snapshotter.v1.btrfs",
        "io.containerd.snapshotter.v1.devmapper",
        "io.containerd.snapshotter.v1.erofs",
        "io.containerd.snapshotter.v1.native",
        "io.containerd.snapshotter.v1.zfs",
        "io.containerd.streaming.v1.manager",
        "io.containerd.ttrpc.v1.otelttrpc",
    ];

    internal static readonly IReadOnlyList<SchemaNode> Root = BuildRoot();

    /// <summary>Every key, flattened, in file order: what docs/configuration.md lists.</summary>
    public static IReadOnlyList<ConfigKeyInfo> Keys { get; } = ConfigKeyInfo.Flatten(Root);

    private static IReadOnlyList<SchemaNode> BuildRoot() =>
    [
        Int<HullConfig>("version", c => c.Version, (c, v) => c with { Version = v },
            "Config format version. Version 3 is current; version 2 (containerd 1.x) and version 1 (no `version` key) are migrated in memory at every start."),
        Str<HullConfig>("root", c => c.Root, (c, v) => c with { Root = v }, "Directory of persistent state: metadata database, content store, snapshots.") with
        {
            Note = "containerd's default is `/var/lib/containerd`; Hull keeps its own state apart.",
        },
        Str<HullConfig>("state", c => c.State, (c, v) => c with { State = v }, "Directory of runtime state (tmpfs): the socket, pinned namespaces, container bundles.") with
        {
            Note = "containerd's default is `/run/containerd`.",
        },
        Bool<HullConfig>("strict", c => c.Strict, (c, v) => c with { Strict = v },
            "Unknown keys are errors (hulld refuses to start) instead of warnings; plugins that neither Hull nor containerd has are errors always. `hulld --strict-config` does the same.") with
        {
            Usage = ConfigKeyUsage.HullOnly,
        },
        Ignored("temp", ConfigValueType.String, "", "Temporary directory of containerd."),
        Ignored("plugin_dir", ConfigValueType.String, "", "Go plugin directory (deprecated in containerd)."),
        Ignored("disabled_plugins", ConfigValueType.StringList, System.Array.Empty<string>(), "Plugins containerd should not load; Hull has no optional plugins to disable."),
        Ignored("required_plugins", ConfigValueType.StringList, System.Array.Empty<string>(), "Plugins containerd must load."),
        Ignored("oom_score", ConfigValueType.Integer, 0, "OOM score adjustment of the daemon; set `OOMScoreAdjust=` in the systemd unit instead."),
        Ignored("imports", ConfigValueType.StringList, System.Array.Empty<string>(), "Further config files to merge; Hull reads a single file, so merge them into it."),
        Table<HullConfig, GrpcConfig>("grpc", "The CRI socket (Hull also serves its admin API on it).", c => c.Grpc, (c, v) => c with { Grpc = v },
            Str<GrpcConfig>("address", g => g.Address, (g, v) => g with { Address = v }, "Unix socket the kubelet, crictl and hullctl connect to.") with
            {
                Note = "containerd's default is `/run/containerd/containerd.sock`.",
            },
            Int<GrpcConfig>("uid", g => g.Uid, (g, v) => g with { Uid = v }, "Owner of the socket.") with { Check = NotNegative },
            Int<GrpcConfig>("gid", g => g.Gid, (g, v) => g with { Gid = v }, "Group of the socket.") with { Check = NotNegative },
            Int<GrpcConfig>("max_recv_message_size", g => g.MaxRecvMessageSize, (g, v) => g with { MaxRecvMessageSize = v }, "Largest gRPC message accepted, in bytes.") with { Check = Positive },
            Int<GrpcConfig>("max_send_message_size", g => g.MaxSendMessageSize, (g, v) => g with { MaxSendMessageSize = v }, "Largest gRPC message sent, in bytes.") with { Check = Positive },
            Ignored("tcp_address", ConfigValueType.String, "", "TCP listener of containerd's API."),
            Ignored("tcp_tls_ca", ConfigValueType.String, "", "TLS CA of the TCP listener."),
            Ignored("tcp_tls_cert", ConfigValueType.String, "", "TLS certificate of the TCP listener."),
            Ignored("tcp_tls_key", ConfigValueType.String, "", "TLS key of the TCP listener.")),
        IgnoredTable("ttrpc", "containerd's ttrpc socket for shims.",
            Ignored("address", ConfigValueType.String, "", "Socket path."),
            Ignored("uid", ConfigValueType.Integer, 0, "Socket owner."),
            Ignored("gid", ConfigValueType.Integer, 0, "Socket group.")),
        Table<HullConfig, DebugConfig>("debug", "Logging and the debug socket.", c => c.Debug, (c, v) => c with { Debug = v },
            Str<DebugConfig>("address", d => d.Address, (d, v) => d with { Address = v }, "Debug socket (pprof-style endpoints); empty means none.") with { Usage = ConfigKeyUsage.Ignored, Note = "containerd's debug socket (Go pprof and expvar); Hull has none." },
            Int<DebugConfig>("uid", d => d.Uid, (d, v) => d with { Uid = v }, "Owner of the debug socket.") with { Usage = ConfigKeyUsage.Ignored, Note = "Owner of containerd's debug socket; Hull has none.", Check = NotNegative },
            Int<DebugConfig>("gid", d => d.Gid, (d, v) => d with { Gid = v }, "Group of the debug socket.") with { Usage = ConfigKeyUsage.Ignored, Note = "Group of containerd's debug socket; Hull has none.", Check = NotNegative },
            Str<DebugConfig>("level", d => d.Level, (d, v) => d with { Level = v.Length == 0 ? "info" : v },
                "Log level: `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `panic` (empty means `info`); `hulld --log-level` overrides it.") with
            {
                Check = OneOf("", "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"),
            },
            Str<DebugConfig>("format", d => d.Format, (d, v) => d with { Format = v }, "Log format: `text` or `json` (empty means `text`).") with
            {
                Check = OneOf("", "text", "json"),
            }),
        Table<HullConfig, MetricsConfig>("metrics", "Prometheus metrics.", c => c.Metrics, (c, v) => c with { Metrics = v },
            Str<MetricsConfig>("address", m => m.Address, (m, v) => m with { Address = v }, "host:port of the Prometheus endpoint; empty means none."),
            Ignored("grpc_histogram", ConfigValueType.Boolean, false, "Per-method gRPC latency histograms.")),
        IgnoredTable("cgroup", "cgroup of the containerd process.",
            Ignored("path", ConfigValueType.String, "", "cgroup path; use `Slice=` in the systemd unit instead.")),
        Ignored("timeouts", ConfigValueType.Table, null, "Timeouts of containerd's shim and metadata operations."),
        Ignored("stream_processors", ConfigValueType.Table, null, "Layer stream processors (e.g. ocicrypt decoders); Hull does not pull encrypted images."),
        Ignored("proxy_plugins", ConfigValueType.Table, IgnoredNode.Empty, "External snapshotter or content plugins reached over gRPC; Hull does not load them."),
        new PluginsNode("plugins", "Plugin sections.", BuildPlugins(), ContainerdOnlyPlugins),
    ];

    private static IReadOnlyList<PluginNode> BuildPlugins() =>
    [
        Plugin<CriRuntimeConfig>(RuntimePlugin, "CRI runtime: runtime handlers, CNI, security defaults.", c => c.Runtime, (c, v) => c with { Runtime = v },
            Same("containerd", "Runtime handlers.",
                Str<CriRuntimeConfig>("default_runtime_name", r => r.DefaultRuntimeName, (r, v) => r with { DefaultRuntimeName = v },
                    "Handler used when a pod names no RuntimeClass; must be one of `containerd.runtimes`."),
                Map<CriRuntimeConfig, RuntimeHandlerConfig>("runtimes",
                    "Runtime handlers by name (the `handler` of a Kubernetes RuntimeClass). Entries are merged with the default `runc` entry; new entries start from the defaults below.",
                    r => r.Runtimes, (r, v) => r with { Runtimes = v }, () => new RuntimeHandlerConfig(), RuntimeHandler()),
                Ignored("ignore_blockio_not_enabled_errors", ConfigValueType.Boolean, false, "Ignore block I/O class errors when blockio is not configured."),
                Ignored("ignore_rdt_not_enabled_errors", ConfigValueType.Boolean, false, "Ignore RDT class errors when RDT is not configured."),
                Removed("default_runtime", "use `default_runtime_name` and define the runtime under `containerd.runtimes`") with { Check = CheckRemovedRuntime },
                Removed("untrusted_workload_runtime", "define a runtime named `untrusted` under `containerd.runtimes`") with { Check = CheckRemovedRuntime },
                Removed("no_pivot", "set `NoPivotRoot` in the runtime's `options`")),
            Table<CriRuntimeConfig, CniConfig>("cni", "CNI network plugins.", r => r.Cni, (r, v) => r with { Cni = v },
                List<CniConfig>("bin_dirs", c => c.BinDirs, (c, v) => c with { BinDirs = v }, "Directories searched for CNI plugin binaries, in order."),
                new FieldNode("bin_dir", "A single CNI plugin directory; read as `bin_dirs = [bin_dir]`. Setting both is an error.", ConfigValueType.String, null,
                    (o, v) => (string)v is { Length: > 0 } dir ? ((CniConfig)o) with { BinDirs = [dir] } : o)
                {
                    Usage = ConfigKeyUsage.Deprecated,
                    DeprecationId = ConfigDeprecations.CriCniBinDir,
                    Note = "use `bin_dirs` instead; deprecated since containerd 2.1",
                },
                Str<CniConfig>("conf_dir", c => c.ConfDir, (c, v) => c with { ConfDir = v }, "Directory of CNI network configs; the first one by name is used."),
                Int<CniConfig>("max_conf_num", c => c.MaxConfNum, (c, v) => c with { MaxConfNum = v },
                    "How many network configs from `conf_dir` a pod is attached to; 0 means all.") with { Check = NotNegative },
                Str<CniConfig>("conf_template", c => c.ConfTemplate, (c, v) => c with { ConfTemplate = v },
                    "Go template a network config is written from when the kubelet reports the node's pod CIDR; empty means none."),
                Bool<CniConfig>("setup_serially", c => c.SetupSerially, (c, v) => c with { SetupSerially = v }, "Attach networks one after another instead of in parallel."),
                Str<CniConfig>("ip_pref", c => c.IpPref, (c, v) => c with { IpPref = v },
                    "Which address becomes the pod IP: `ipv4` (or empty: the first IPv4), `ipv6`, or `cni` (the first the plugin returned).") with
                {
                    Check = OneOf("", "ipv4", "ipv6", "cni"),
                },
                Bool<CniConfig>("use_internal_loopback", c => c.UseInternalLoopback, (c, v) => c with { UseInternalLoopback = v },
                    "Bring `lo` up without the CNI loopback plugin.")),
            Bool<CriRuntimeConfig>("enable_selinux", r => r.EnableSelinux, (r, v) => r with { EnableSelinux = v }, "Apply SELinux labels to containers.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull does not label containers for SELinux." },
            Int<CriRuntimeConfig>("selinux_category_range", r => r.SelinuxCategoryRange, (r, v) => r with { SelinuxCategoryRange = v },
                "Upper bound of the SELinux MCS category range.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull does not label containers for SELinux.", Check = Positive },
            Int<CriRuntimeConfig>("max_container_log_line_size", r => r.MaxContainerLogLineSize, (r, v) => r with { MaxContainerLogLineSize = v },
                "Longer log lines are split, in bytes; zero or negative means no limit.") with { Usage = ConfigKeyUsage.Ignored, Note = "conmon, which writes Hull's container logs, splits long lines at its own 8 KiB buffer." },
            Bool<CriRuntimeConfig>("disable_apparmor", r => r.DisableApparmor, (r, v) => r with { DisableApparmor = v }, "Do not apply AppArmor profiles."),
            Bool<CriRuntimeConfig>("restrict_oom_score_adj", r => r.RestrictOomScoreAdj, (r, v) => r with { RestrictOomScoreAdj = v },
                "Never give a container a lower OOM score adjustment than the daemon's (for rootless setups)."),
            Bool<CriRuntimeConfig>("disable_proc_mount", r => r.DisableProcMount, (r, v) => r with { DisableProcMount = v }, "Ignore the CRI `ProcMount` setting."),
            Str<CriRuntimeConfig>("unset_seccomp_profile", r => r.UnsetSeccompProfile, (r, v) => r with { UnsetSeccompProfile = v },
                "Seccomp profile for containers that ask for none; empty means unconfined."),
            Bool<CriRuntimeConfig>("tolerate_missing_hugetlb_controller", r => r.TolerateMissingHugetlbController, (r, v) => r with { TolerateMissingHugetlbController = v },
                "Ignore hugepage limits when the hugetlb cgroup controller is missing."),
            Bool<CriRuntimeConfig>("disable_hugetlb_controller", r => r.DisableHugetlbController, (r, v) => r with { DisableHugetlbController = v },
                "Never set hugepage limits, even when the controller is present."),
            Bool<CriRuntimeConfig>("device_ownership_from_security_context", r => r.DeviceOwnershipFromSecurityContext,
                (r, v) => r with { DeviceOwnershipFromSecurityContext = v }, "Owner of host devices in containers is the container's RunAsUser/RunAsGroup instead of the host's owner."),
            Bool<CriRuntimeConfig>("ignore_image_defined_volumes", r => r.IgnoreImageDefinedVolumes, (r, v) => r with { IgnoreImageDefinedVolumes = v },
                "Do not create the volumes an image declares."),
            Bool<CriRuntimeConfig>("enable_unprivileged_ports", r => r.EnableUnprivilegedPorts, (r, v) => r with { EnableUnprivilegedPorts = v },
                "Set `net.ipv4.ip_unprivileged_port_start=0` in pods that are not on the host network."),
            Bool<CriRuntimeConfig>("enable_unprivileged_icmp", r => r.EnableUnprivilegedIcmp, (r, v) => r with { EnableUnprivilegedIcmp = v },
                "Set `net.ipv4.ping_group_range=0 2147483647` in pods that are not on the host network."),
            Bool<CriRuntimeConfig>("enable_cdi", r => r.EnableCdi, (r, v) => r with { EnableCdi = v }, "Apply Container Device Interface specs to containers that request CDI devices.") with
            {
                Usage = ConfigKeyUsage.Deprecated,
                Note = "containerd 2.2 deprecates the key and 2.3 removes it (CDI is then always on); setting it to false records the deprecation",
                Check = CheckEnableCdi,
            },
            List<CriRuntimeConfig>("cdi_spec_dirs", r => r.CdiSpecDirs, (r, v) => r with { CdiSpecDirs = v }, "Directories of CDI specs; later ones take precedence."),
            Dur<CriRuntimeConfig>("drain_exec_sync_io_timeout", r => r.DrainExecSyncIoTimeout, (r, v) => r with { DrainExecSyncIoTimeout = v },
                "How long ExecSync waits for output after the exec process exits; 0s means no limit.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull's ExecSync returns when the command exits (conmon collects the output), so it never waits for a background child's output to close." },
            List<CriRuntimeConfig>("ignore_deprecation_warnings", r => r.IgnoreDeprecationWarnings, (r, v) => r with { IgnoreDeprecationWarnings = v },
                "Deprecation IDs (such as `io.containerd.deprecation/cri-registry-mirrors`) that do not count against the `ContainerRuntimeHasNoDeprecations` condition (CRI Status and the Node condition; containerd calls it `ContainerdHasNoDeprecationWarnings`)."),
            Ignored("netns_mounts_under_state_dir", ConfigValueType.Boolean, false, "Hull always pins network namespaces under `<state>/ns`."),
            Removed("systemd_cgroup", "set `SystemdCgroup = true` in `containerd.runtimes.<name>.options`"),
            Removed("disable_cgroup", "use cgroup v2 delegation for rootless setups")),

        Plugin<CriImagesConfig>(ImagesPlugin, "CRI images: snapshotter, pinned images, pulls, registries.", c => c.Images, (c, v) => c with { Images = v },
            Str<CriImagesConfig>("snapshotter", i => i.Snapshotter, (i, v) => i with { Snapshotter = v }, "Snapshotter images are unpacked into; Hull has `overlayfs`.") with
            {
                Check = CheckImagesSnapshotter,
            },
            Bool<CriImagesConfig>("disable_snapshot_annotations", i => i.DisableSnapshotAnnotations, (i, v) => i with { DisableSnapshotAnnotations = v },
                "Do not pass image annotations to the snapshotter (only remote snapshotters use them).") with { Usage = ConfigKeyUsage.Ignored, Note = "Only remote snapshotters use snapshot annotations, and Hull has none." },
            Bool<CriImagesConfig>("discard_unpacked_layers", i => i.DiscardUnpackedLayers, (i, v) => i with { DiscardUnpackedLayers = v },
                "Let garbage collection remove compressed layers from the content store once they are unpacked."),
            StrMap<CriImagesConfig>("pinned_images", i => i.PinnedImages, (i, v) => i with { PinnedImages = v },
                "Images the kubelet must never garbage-collect, by name. `sandbox` is the pause image; Hull needs none because its infra process is `catatonit`, but one configured here is pulled (anonymously, when missing), pinned and used: it replaces `catatonit` as the infra process, i.e. its entrypoint + cmd run (as its user, or the pod's `runAsUser`) on a per-pod snapshot of it. As with `catatonit`, a pod has an infra process only when it shares a PID namespace; other pods run none, pause image or not (containerd always starts a pause container; Hull pins the network, IPC and UTS namespaces with bind mounts instead). The snapshot is removed when the pod stops and is never garbage-collected while the pod exists.") with
            {
                Note = "containerd pins `sandbox = \"registry.k8s.io/pause:3.10\"` by default; Hull pins nothing.",
            },
            Int<CriImagesConfig>("max_concurrent_downloads", i => i.MaxConcurrentDownloads, (i, v) => i with { MaxConcurrentDownloads = v },
                "Layers of one image downloaded at the same time.") with { Check = Positive },
            Dur<CriImagesConfig>("image_pull_progress_timeout", i => i.ImagePullProgressTimeout, (i, v) => i with { ImagePullProgressTimeout = v },
                "A pull that receives no data for this long is cancelled; 0s means never."),
            Bool<CriImagesConfig>("image_pull_with_sync_fs", i => i.ImagePullWithSyncFs, (i, v) => i with { ImagePullWithSyncFs = v },
                "fsync unpacked files before a pull completes."),
            Int<CriImagesConfig>("stats_collect_period", i => i.StatsCollectPeriod, (i, v) => i with { StatsCollectPeriod = v },
                "Seconds between image filesystem usage collections.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull reads image filesystem usage when ImageFsInfo asks for it.", Check = Positive },
            Same("registry", "Registry access.",
                Str<CriImagesConfig>("config_path", i => i.RegistryConfigPath, (i, v) => i with { RegistryConfigPath = v },
                    "Directories of `hosts.toml` files (mirrors, TLS, auth headers per registry), separated by `:`; empty means none."),
                Ignored("mirrors", ConfigValueType.Table, IgnoredNode.Empty, "Registry mirrors of containerd 1.x; Hull reads only `hosts.toml` files.") with
                {
                    DeprecationId = ConfigDeprecations.CriRegistryMirrors,
                    Explain = Migration.RegistryHostsAdvice.ForMirrors,
                },
                Ignored("configs", ConfigValueType.Table, IgnoredNode.Empty, "Per-registry TLS and auth of containerd 1.x; use `hosts.toml` files and image pull secrets.") with
                {
                    DeprecationId = ConfigDeprecations.CriRegistryConfigs,
                    Explain = (_, _, path) => $"`{path}` is not supported by Hull and is ignored: put TLS settings (`ca`, `client`, `skip_verify`) in hosts.toml files under `config_path`, and credentials in Kubernetes image pull secrets",
                },
                Ignored("auths", ConfigValueType.Table, IgnoredNode.Empty, "Registry credentials of containerd 1.x; use image pull secrets.") with
                {
                    DeprecationId = ConfigDeprecations.CriRegistryAuths,
                    Explain = (_, _, path) => $"`{path}` is not supported by Hull and is ignored: use Kubernetes image pull secrets",
                },
                Ignored("headers", ConfigValueType.Table, IgnoredNode.Empty, "HTTP headers sent to every registry; put a `[header]` table in hosts.toml instead.")),
            IgnoredTable("image_decryption", "Decryption of encrypted images; Hull does not pull encrypted images.",
                Ignored("key_model", ConfigValueType.String, "node", "Where decryption keys live.")),
            Ignored("runtime_platforms", ConfigValueType.Table, IgnoredNode.Empty, "Platform and snapshotter per runtime handler."),
            Ignored("use_local_image_pull", ConfigValueType.Boolean, false, "Pull with the local client instead of the transfer service.")),

        Plugin<CriServerConfig>(ServerPlugin, "CRI server: the streaming server behind `kubectl exec`, `attach` and `port-forward`. hulld binds its address and port at start (a taken port fails the start) and starts the HTTP server on it with the first exec, attach or port-forward, so a node that never streams does not carry it.", c => c.Server,
            (c, v) => c with { Server = v },
            Str<CriServerConfig>("stream_server_address", s => s.StreamServerAddress, (s, v) => s with { StreamServerAddress = v },
                "IP address the streaming server listens on (the kubelet proxies to it)."),
            Str<CriServerConfig>("stream_server_port", s => s.StreamServerPort, (s, v) => s with { StreamServerPort = v },
                "Port of the streaming server, as a string; \"0\" picks a free one.") with { Check = Port },
            Dur<CriServerConfig>("stream_idle_timeout", s => s.StreamIdleTimeout, (s, v) => s with { StreamIdleTimeout = v },
                "An idle streaming connection is closed after this long."),
            Bool<CriServerConfig>("enable_tls_streaming", s => s.EnableTlsStreaming, (s, v) => s with { EnableTlsStreaming = v },
                "Serve streams over TLS; with no key pair below, a self-signed certificate is generated."),
            Same("x509_key_pair_streaming", "Key pair of the TLS streaming server.",
                Str<CriServerConfig>("tls_cert_file", s => s.TlsCertFile, (s, v) => s with { TlsCertFile = v }, "PEM certificate; set together with `tls_key_file`."),
                Str<CriServerConfig>("tls_key_file", s => s.TlsKeyFile, (s, v) => s with { TlsKeyFile = v }, "PEM private key; set together with `tls_cert_file`.")),
            Ignored("disable_tcp_service", ConfigValueType.Boolean, true, "Serve CRI on containerd's TCP listener; Hull serves CRI on the unix socket only.")),

        Plugin<NriConfig>(NriPlugin, "Node Resource Interface: plugins that adjust pods and containers.", c => c.Nri, (c, v) => c with { Nri = v },
            Bool<NriConfig>("disable", n => n.Disable, (n, v) => n with { Disable = v }, "Turn NRI off."),
            Str<NriConfig>("socket_path", n => n.SocketPath, (n, v) => n with { SocketPath = v }, "Socket externally started NRI plugins connect to."),
            Str<NriConfig>("plugin_path", n => n.PluginPath, (n, v) => n with { PluginPath = v }, "Directory of NRI plugins started by Hull (`NN-name` executables)."),
            Str<NriConfig>("plugin_config_path", n => n.PluginConfigPath, (n, v) => n with { PluginConfigPath = v }, "Directory of configs for the plugins Hull starts."),
            Dur<NriConfig>("plugin_registration_timeout", n => n.PluginRegistrationTimeout, (n, v) => n with { PluginRegistrationTimeout = v },
                "How long a started plugin has to register."),
            Dur<NriConfig>("plugin_request_timeout", n => n.PluginRequestTimeout, (n, v) => n with { PluginRequestTimeout = v },
                "How long a plugin has to answer one request."),
            Bool<NriConfig>("disable_connections", n => n.DisableConnections, (n, v) => n with { DisableConnections = v },
                "Accept no connections from externally started plugins."),
            List<NriConfig>("required_plugins", n => n.RequiredPlugins, (n, v) => n with { RequiredPlugins = v },
                "Plugins (`name` or `NN-name`) every pod and container event needs: while one is not connected, or when it fails or times out, RunPodSandbox and CreateContainer fail naming it instead of going ahead without it.") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Note = "containerd drops a plugin that times out and goes on (containerd/nri#114); Hull fails closed for the plugins listed here.",
            },
            StrMap<NriConfig>("plugin_request_timeouts", n => n.PluginRequestTimeouts, (n, v) => n with { PluginRequestTimeouts = v },
                "Per-plugin `plugin_request_timeout`, by plugin `name` or `NN-name`, as Go durations (`\"500ms\"`).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Check = DurationValues,
            },
            Table<NriConfig, NriValidatorConfig>("default_validator", "NRI's built-in validator of container adjustments (containerd 2.1+).",
                n => n.DefaultValidator, (n, v) => n with { DefaultValidator = v },
                Bool<NriValidatorConfig>("enable", v => v.Enable, (c, v) => c with { Enable = v }, "Run the default validator after all plugins adjusted a container."),
                Bool<NriValidatorConfig>("reject_oci_hook_adjustment", v => v.RejectOciHookAdjustment, (c, v) => c with { RejectOciHookAdjustment = v },
                    "Refuse adjustments that add OCI hooks."),
                Bool<NriValidatorConfig>("reject_runtime_default_seccomp_adjustment", v => v.RejectRuntimeDefaultSeccompAdjustment,
                    (c, v) => c with { RejectRuntimeDefaultSeccompAdjustment = v }, "Refuse adjustments of a RuntimeDefault seccomp profile."),
                Bool<NriValidatorConfig>("reject_unconfined_seccomp_adjustment", v => v.RejectUnconfinedSeccompAdjustment,
                    (c, v) => c with { RejectUnconfinedSeccompAdjustment = v }, "Refuse adjustments of an Unconfined seccomp profile."),
                Bool<NriValidatorConfig>("reject_custom_seccomp_adjustment", v => v.RejectCustomSeccompAdjustment,
                    (c, v) => c with { RejectCustomSeccompAdjustment = v }, "Refuse adjustments of a Localhost seccomp profile."),
                Bool<NriValidatorConfig>("reject_namespace_adjustment", v => v.RejectNamespaceAdjustment, (c, v) => c with { RejectNamespaceAdjustment = v },
                    "Refuse adjustments of Linux namespaces."),
                Bool<NriValidatorConfig>("reject_sysctl_adjustment", v => v.RejectSysctlAdjustment, (c, v) => c with { RejectSysctlAdjustment = v },
                    "Refuse adjustments of sysctls."),
                List<NriValidatorConfig>("required_plugins", v => v.RequiredPlugins, (c, v) => c with { RequiredPlugins = v },
                    "Plugins that must have been consulted for every container adjustment."),
                Str<NriValidatorConfig>("tolerate_missing_plugins_annotation", v => v.TolerateMissingPluginsAnnotation,
                    (c, v) => c with { TolerateMissingPluginsAnnotation = v }, "Annotation that lets a pod or container do without the required plugins (`\"true\"`)."))),

        Plugin<TransferConfig>(TransferPlugin, "Transfer service: pulls, pushes and unpacking.", c => c.Transfer, (c, v) => c with { Transfer = v },
            Int<TransferConfig>("max_concurrent_downloads", t => t.MaxConcurrentDownloads, (t, v) => t with { MaxConcurrentDownloads = v },
                "Blobs downloaded at the same time per pull.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull has one pull path, limited by the images plugin's `max_concurrent_downloads`.", Check = Positive },
            Int<TransferConfig>("max_concurrent_uploaded_layers", t => t.MaxConcurrentUploadedLayers, (t, v) => t with { MaxConcurrentUploadedLayers = v },
                "Layers uploaded at the same time per push.") with { Check = Positive },
            Bool<TransferConfig>("check_platform_supported", t => t.CheckPlatformSupported, (t, v) => t with { CheckPlatformSupported = v },
                "Unpack only platforms listed in `unpack_config`.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull pulls and unpacks only the host's platform." },
            Str<TransferConfig>("config_path", t => t.ConfigPath, (t, v) => t with { ConfigPath = v },
                "Directories of `hosts.toml` files for the transfer service, separated by `:`; empty means none."),
            Array<TransferConfig, UnpackConfiguration>("unpack_config",
                "Where each platform's images are unpacked. Empty means one entry: the host's platform into `overlayfs`.",
                t => t.UnpackConfig, (t, v) => t with { UnpackConfig = v }, () => new UnpackConfiguration(),
                Str<UnpackConfiguration>("platform", u => u.Platform, (u, v) => u with { Platform = v }, "Platform such as `linux/amd64`.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull unpacks the host's platform into the images plugin's `snapshotter`." },
                Str<UnpackConfiguration>("snapshotter", u => u.Snapshotter, (u, v) => u with { Snapshotter = v }, "Snapshotter to unpack into.") with
                {
                    Usage = ConfigKeyUsage.Ignored,
                    Note = "Hull unpacks the host's platform into the images plugin's `snapshotter`.",
                    Check = CheckImagesSnapshotter,
                },
                Str<UnpackConfiguration>("differ", u => u.Differ, (u, v) => u with { Differ = v }, "Diff applier; empty means the default one.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull has one diff applier." })),

        Plugin<ImageVerifierConfig>(ImageVerifierPlugin, "Image verifiers: executables that may veto a pull.", c => c.ImageVerifier,
            (c, v) => c with { ImageVerifier = v },
            Str<ImageVerifierConfig>("bin_dir", v => v.BinDir, (c, v) => c with { BinDir = v }, "Directory of verifier executables; every one must accept an image before it is stored."),
            Int<ImageVerifierConfig>("max_verifiers", v => v.MaxVerifiers, (c, v) => c with { MaxVerifiers = v }, "At most this many verifiers are run (in name order).") with
            {
                Check = NotNegative,
            },
            Dur<ImageVerifierConfig>("per_verifier_timeout", v => v.PerVerifierTimeout, (c, v) => c with { PerVerifierTimeout = v }, "Time limit of one verifier run.")),

        Plugin<OverlayfsConfig>(OverlayfsPlugin, "The overlayfs snapshotter.", c => c.Overlayfs, (c, v) => c with { Overlayfs = v },
            Str<OverlayfsConfig>("root_path", o => o.RootPath, (o, v) => o with { RootPath = v }, "Directory of snapshots; empty means `<root>/snapshots/overlayfs`."),
            Bool<OverlayfsConfig>("upperdir_label", o => o.UpperdirLabel, (o, v) => o with { UpperdirLabel = v }, "Record the upper directory of each snapshot in its labels."),
            Bool<OverlayfsConfig>("sync_remove", o => o.SyncRemove, (o, v) => o with { SyncRemove = v }, "Remove snapshot directories before the removal returns instead of in the background."),
            Bool<OverlayfsConfig>("slow_chown", o => o.SlowChown, (o, v) => o with { SlowChown = v },
                "For user-namespaced pods on kernels without idmapped overlay mounts, copy and chown the layers (slow) instead of failing."),
            List<OverlayfsConfig>("mount_options", o => o.MountOptions, (o, v) => o with { MountOptions = v }, "Extra overlay mount options, such as `volatile`.")),

        Plugin<OtlpConfig>(OtlpPlugin, "OTLP trace exporter (deprecated: use the `OTEL_EXPORTER_OTLP_*` environment variables, which win over these keys).",
            c => c.Otlp, (c, v) => c with { Otlp = v },
            Str<OtlpConfig>("endpoint", o => o.Endpoint, (o, v) => o with { Endpoint = v },
                "Where spans are sent, such as `http://127.0.0.1:4318`; tracing is on when this or `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` is set.") with
            {
                Usage = ConfigKeyUsage.Deprecated, DeprecationId = ConfigDeprecations.TracingProcessorConfig, Note = "use `OTEL_EXPORTER_OTLP_ENDPOINT`",
            },
            Str<OtlpConfig>("protocol", o => o.Protocol, (o, v) => o with { Protocol = v }, "`http/protobuf` (empty means this) or `grpc`.") with
            {
                Usage = ConfigKeyUsage.Deprecated, DeprecationId = ConfigDeprecations.TracingProcessorConfig, Note = "use `OTEL_EXPORTER_OTLP_PROTOCOL`",
                Check = OneOf("", "http/protobuf", "grpc"),
            },
            Bool<OtlpConfig>("insecure", o => o.Insecure, (o, v) => o with { Insecure = v }, "Send to an `endpoint` given as host:port over plain HTTP rather than HTTPS.") with
            {
                Usage = ConfigKeyUsage.Deprecated, DeprecationId = ConfigDeprecations.TracingProcessorConfig, Note = "use an `http://` URL in `OTEL_EXPORTER_OTLP_ENDPOINT`",
            }),

        Plugin<TracingConfig>(TracingPlugin, "Trace sampling and service name (deprecated: use `OTEL_SERVICE_NAME` and `OTEL_TRACES_SAMPLER*`, which win over these keys).",
            c => c.Tracing, (c, v) => c with { Tracing = v },
            Str<TracingConfig>("service_name", t => t.ServiceName, (t, v) => t with { ServiceName = v }, "Service name of the spans; empty means `hulld`.") with
            {
                Usage = ConfigKeyUsage.Deprecated, DeprecationId = ConfigDeprecations.TracingServiceConfig, Note = "use `OTEL_SERVICE_NAME`",
            },
            Float<TracingConfig>("sampling_ratio", t => t.SamplingRatio, (t, v) => t with { SamplingRatio = v },
                "Fraction of new traces sampled (0 to 1; spans whose caller sampled them are always kept); 0 means the default, always.") with
            {
                Usage = ConfigKeyUsage.Deprecated, DeprecationId = ConfigDeprecations.TracingServiceConfig,
                Note = "use `OTEL_TRACES_SAMPLER=parentbased_traceidratio` and `OTEL_TRACES_SAMPLER_ARG`", Check = Ratio,
            }),

        Plugin<NodeConditionsConfig>(NodeConditionsPlugin,
            "Hull only: publishes the `ContainerRuntimeHasNoDeprecations` condition (the one CRI Status reports) on this node's Kubernetes Node object, where `kubectl get nodes` and upgrade tooling see it (the kubelet does not copy runtime conditions), with an Event on the Node for each new warning. The status is patched alone (a strategic merge of `nodes/<name>/status`, never a read-modify-write), so the kubelet's conditions and any others stay. hulld publishes with `kubeconfig`'s credentials, or in a pod with its service account's; hulld outside a pod with `kubeconfig` empty leaves it to `hulld node-conditions`, which the DaemonSet installer runs in a pod on the node (`deploy/kubernetes`).",
            c => c.NodeConditions, (c, v) => c with { NodeConditions = v },
            Bool<NodeConditionsConfig>("enable", n => n.Enable, (n, v) => n with { Enable = v },
                "Publish the condition (the DaemonSet installer's config sets it).") with { Usage = ConfigKeyUsage.HullOnly },
            Str<NodeConditionsConfig>("kubeconfig", n => n.Kubeconfig, (n, v) => n with { Kubeconfig = v },
                "kubeconfig file of the identity that patches the Node, e.g. the kubelet's own (`system:node:<name>` may patch its Node's status); empty means in-cluster credentials (the service account token, re-read as it rotates, its CA and `KUBERNETES_SERVICE_HOST`/`_PORT`).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
            },
            Str<NodeConditionsConfig>("node_name", n => n.NodeName, (n, v) => n with { NodeName = v },
                "Name of this node's Node object; empty means the `NODE_NAME` environment variable (the DaemonSet sets it from the downward API), then the host name in lower case (the kubelet's default).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
            },
            Dur<NodeConditionsConfig>("resync_interval", n => n.ResyncInterval, (n, v) => n with { ResyncInterval = v },
                "How often the condition is patched again (its `lastHeartbeatTime`); a new warning is published at once.") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Check = PositiveDuration,
            }),
    ];

    private static SchemaNode[] RuntimeHandler() =>
    [
        Str<RuntimeHandlerConfig>("runtime_type", h => h.RuntimeType, (h, v) => h with { RuntimeType = v },
            "containerd shim name. Hull runs `io.containerd.runc.v2` handlers itself (conmon + the OCI runtime in `options.BinaryName`); other shims cannot be started.") with
        {
            Check = CheckRuntimeType,
        },
        Str<RuntimeHandlerConfig>("runtime_path", h => h.RuntimePath, (h, v) => h with { RuntimePath = v }, "Absolute path of the shim binary; empty means found by name."),
        Str<RuntimeHandlerConfig>("sandboxer", h => h.Sandboxer, (h, v) => h with { Sandboxer = v.Length == 0 ? Defaults.Sandboxer : v },
            "Sandbox controller of pods of this handler: `podsandbox` (namespaces on the node, runc + conmon) or `microvm` (each pod in its own qemu microVM with its own kernel, containers under runc in the guest; see docs/microvm.md). Empty means `podsandbox`.") with
        {
            Check = OneOf("", Defaults.Sandboxer, "microvm"),
            Note = "containerd 2.x has `podsandbox` and `shim` (a sandboxer shim such as Kata's); Hull builds `microvm` in instead of loading a shim.",
        },
        Str<RuntimeHandlerConfig>("snapshotter", h => h.Snapshotter, (h, v) => h with { Snapshotter = v },
            "Snapshotter of this handler's containers; empty means the images plugin's `snapshotter`.") with
        {
            Check = CheckHandlerSnapshotter,
        },
        List<RuntimeHandlerConfig>("pod_annotations", h => h.PodAnnotations, (h, v) => h with { PodAnnotations = v },
            "Pod annotations (`*` wildcards allowed) passed to the OCI spec of the sandbox and its containers."),
        List<RuntimeHandlerConfig>("container_annotations", h => h.ContainerAnnotations, (h, v) => h with { ContainerAnnotations = v },
            "Container annotations (`*` wildcards allowed) passed to the OCI spec.") with { Usage = ConfigKeyUsage.Ignored, Note = "Hull passes every container annotation to the OCI spec (as CRI-O does), so no allow-list is needed." },
        Bool<RuntimeHandlerConfig>("privileged_without_host_devices", h => h.PrivilegedWithoutHostDevices, (h, v) => h with { PrivilegedWithoutHostDevices = v },
            "Privileged containers do not get the host's devices."),
        Bool<RuntimeHandlerConfig>("privileged_without_host_devices_all_devices_allowed", h => h.PrivilegedWithoutHostDevicesAllDevicesAllowed,
            (h, v) => h with { PrivilegedWithoutHostDevicesAllDevicesAllowed = v },
            "With `privileged_without_host_devices`, still allow access to all devices in the device cgroup."),
        Str<RuntimeHandlerConfig>("base_runtime_spec", h => h.BaseRuntimeSpec, (h, v) => h with { BaseRuntimeSpec = v },
            "JSON file with an OCI spec every container of this handler starts from; empty means Hull's default spec."),
        Str<RuntimeHandlerConfig>("cni_conf_dir", h => h.CniConfDir, (h, v) => h with { CniConfDir = v }, "CNI config directory for this handler; empty means `cni.conf_dir`."),
        Int<RuntimeHandlerConfig>("cni_max_conf_num", h => h.CniMaxConfNum, (h, v) => h with { CniMaxConfNum = v },
            "`cni.max_conf_num` for this handler; 0 means the global one.") with { Check = NotNegative },
        Table<RuntimeHandlerConfig, MicroVmConfig>("microvm", "The VMs of this handler's pods, read when `sandboxer` is `microvm`.",
            h => h.MicroVm, (h, v) => h with { MicroVm = v },
            Str<MicroVmConfig>("qemu_path", m => m.QemuPath, (m, v) => m with { QemuPath = v }, "qemu binary (`qemu-system-x86_64` found on PATH, or a path).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
            },
            Str<MicroVmConfig>("kernel_path", m => m.KernelPath, (m, v) => m with { KernelPath = v },
                "Uncompressed guest kernel (ELF vmlinux with a PVH entry); `hack/build-microvm.sh` installs one from Debian's `linux-image-amd64`.") with
            {
                Usage = ConfigKeyUsage.HullOnly,
            },
            Str<MicroVmConfig>("initrd_path", m => m.InitrdPath, (m, v) => m with { InitrdPath = v },
                "Guest initramfs with the agent, runc and the virtio/9p modules (`hack/build-microvm.sh` builds it).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
            },
            Int<MicroVmConfig>("memory_mib", m => m.MemoryMib, (m, v) => m with { MemoryMib = v }, "Memory of each VM, in MiB (the containers' limits apply inside it).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Check = Positive,
            },
            Int<MicroVmConfig>("vcpus", m => m.Vcpus, (m, v) => m with { Vcpus = v }, "Virtual CPUs of each VM.") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Check = Positive,
            },
            Str<MicroVmConfig>("accel", m => m.Accel, (m, v) => m with { Accel = v },
                "qemu accelerator: `kvm`, `tcg` (software emulation: correct but slow) or `auto` (KVM when `/dev/kvm` works for a probe VM, else TCG; `hullctl info` shows the choice).") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Check = OneOf("auto", "kvm", "tcg"),
            },
            Dur<MicroVmConfig>("boot_timeout", m => m.BootTimeout, (m, v) => m with { BootTimeout = v },
                "How long a VM may take from qemu's start until its agent answers; `RunPodSandbox` fails with the console's last lines after it.") with
            {
                Usage = ConfigKeyUsage.HullOnly,
                Check = PositiveDuration,
            }),
        Ignored("io_type", ConfigValueType.String, "", "How container I/O reaches the shim; Hull's conmon always uses pipes and log files."),
        Ignored("cgroup_writable", ConfigValueType.Boolean, false, "Mount the container's cgroup read-write."),
        Removed("runtime_engine", "Hull runs the OCI runtime named by `options.BinaryName`"),
        Removed("runtime_root", "set `options.Root`"),
        new TableNode("options", "Options of the runc shim; for other shims they are passed through by containerd and not used by Hull.",
        [
            Str<RuntimeHandlerConfig>("BinaryName", h => h.BinaryName, (h, v) => h with { BinaryName = v },
                "OCI runtime binary (`runc`, `crun`, a path); empty means `runc` on PATH."),
            Str<RuntimeHandlerConfig>("Root", h => h.Root, (h, v) => h with { Root = v }, "State directory of the OCI runtime (its `--root`); empty means its default."),
            Bool<RuntimeHandlerConfig>("SystemdCgroup", h => h.SystemdCgroup, (h, v) => h with { SystemdCgroup = v },
                "Use the systemd cgroup driver (set the kubelet's `cgroupDriver: systemd` to match; `RuntimeConfig` reports the default handler's driver). With it, Hull creates no pod cgroup: the pod's `cgroup_parent` must be a systemd slice (`kubepods-burstable-pod<uid>.slice`, made by the kubelet through systemd; anything else fails `RunPodSandbox` with InvalidArgument), runc places the infra process and each container in a `<slice>:hull:<id>` scope, pod stats are read from the slice's cgroup, and `UpdatePodSandboxResources` writes nothing (the kubelet sets the slice's limits through systemd). A pod without a cgroup parent runs its scopes under `system.slice`. With cgroupfs (the default), Hull creates the pod cgroup (`cgroup_parent`, else `/hull/<pod id>`) in every hierarchy (cgroup v1, hybrid or v2), and `UpdatePodSandboxResources` writes v1's `cpu.shares`/`cpu.cfs_*`/`memory.limit_in_bytes` or v2's `cpu.weight`/`cpu.max`/`memory.max`."),
            Ignored("NoPivotRoot", ConfigValueType.Boolean, false, "runc `--no-pivot`."),
            Ignored("NoNewKeyring", ConfigValueType.Boolean, false, "runc `--no-new-keyring`."),
            Ignored("ShimCgroup", ConfigValueType.String, "", "cgroup of the shim process; Hull runs conmon, not a shim."),
            Ignored("IoUid", ConfigValueType.Integer, 0, "Owner of the shim's I/O pipes."),
            Ignored("IoGid", ConfigValueType.Integer, 0, "Group of the shim's I/O pipes."),
            Ignored("CriuImagePath", ConfigValueType.String, "", "CRIU image directory for checkpoints."),
            Ignored("CriuWorkPath", ConfigValueType.String, "", "CRIU work directory for checkpoints."),
            Ignored("TaskApiAddress", ConfigValueType.String, "", "Task API address of a sandboxed shim."),
            Ignored("TaskApiVersion", ConfigValueType.Integer, 0, "Task API version of a sandboxed shim."),
            Removed("CriuPath", "put the `criu` binary on PATH"),
        ], o => o, (_, v) => v)
        {
            IsOpen = o => !RuncRuntimeTypes.Contains(((RuntimeHandlerConfig)o).RuntimeType),
        },
    ];

    private static void DurationValues(object value, FieldContext context)
    {
        foreach (var (name, text) in (IReadOnlyDictionary<string, string>)value)
        {
            if (!GoDuration.TryParse(text, out _, out var reason))
            {
                context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}.{name}` must be a duration such as \"500ms\": {reason}");
            }
        }
    }

    private static void NotNegative(object value, FieldContext context)
    {
        if ((int)value < 0)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}` must not be negative, got {value}");
        }
    }

    private static void Positive(object value, FieldContext context)
    {
        if ((int)value <= 0)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}` must be positive, got {value}");
        }
    }

    private static void Ratio(object value, FieldContext context)
    {
        if ((double)value is < 0 or > 1 or double.NaN)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}` must be between 0 and 1, got {((double)value).ToString(CultureInfo.InvariantCulture)}");
        }
    }

    private static void PositiveDuration(object value, FieldContext context)
    {
        if ((TimeSpan)value <= TimeSpan.Zero)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}` must be positive, got {GoDuration.Format((TimeSpan)value)}");
        }
    }

    private static void Port(object value, FieldContext context)
    {
        if (!int.TryParse((string)value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}` must be a port number (a string such as \"10010\", or \"0\" for any), got \"{value}\"");
        }
    }

    private static FieldCheck OneOf(params string[] allowed) => (value, context) =>
    {
        if (!allowed.Contains((string)value))
        {
            string list = string.Join(", ", allowed.Where(a => a.Length > 0).Select(a => $"\"{a}\""));
            context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}` must be one of {list}, got \"{value}\"");
        }
    };

    // containerd 2.2 warns only when CDI is turned off (its default config sets the key to true).
    private static void CheckEnableCdi(object value, FieldContext context)
    {
        if (!(bool)value)
            context.Deprecate(ConfigDeprecations.EnableCdi, $"`{context.At.Path}` = false is deprecated: containerd 2.3 removes the key and CDI is always enabled");
    }

    private static void CheckRuntimeType(object value, FieldContext context)
    {
        string type = (string)value;
        switch (type)
        {
            case Defaults.RuntimeType:
                return;
            case "io.containerd.runc.v1":
                context.Deprecate(ConfigDeprecations.RuntimeRuncV1,
                    $"`{context.At.Path}`: runtime type \"io.containerd.runc.v1\" was removed in containerd 2.0; Hull runs it as \"{Defaults.RuntimeType}\", change it to that");
                return;
            case "io.containerd.runtime.v1.linux":
                context.Deprecate(ConfigDeprecations.RuntimeV1,
                    $"`{context.At.Path}`: runtime type \"io.containerd.runtime.v1.linux\" (shim v1) was removed in containerd 2.0; Hull runs it as \"{Defaults.RuntimeType}\", change it to that");
                return;
            default:
                context.Warn(ConfigDiagnosticKind.InvalidValue,
                    $"`{context.At.Path}`: \"{type}\" is a containerd shim Hull cannot start; pods of this handler will fail. " +
                    $"Hull runs OCI runtimes under conmon: use runtime_type = \"{Defaults.RuntimeType}\" with options.BinaryName (e.g. \"crun\", \"runsc\")");
                return;
        }
    }

    private static void CheckImagesSnapshotter(object value, FieldContext context) => CheckSnapshotter((string)value, context, allowEmpty: false);

    private static void CheckHandlerSnapshotter(object value, FieldContext context) => CheckSnapshotter((string)value, context, allowEmpty: true);

    private static void CheckSnapshotter(string name, FieldContext context, bool allowEmpty)
    {
        if (name == Defaults.Snapshotter || (allowEmpty && name.Length == 0))
        {
            return;
        }

        if (name == "aufs")
        {
            context.Deprecate(ConfigDeprecations.AufsSnapshotter, $"`{context.At.Path}`: the aufs snapshotter was removed in containerd 2.0");
        }

        context.Error(ConfigDiagnosticKind.InvalidValue, $"`{context.At.Path}`: snapshotter \"{name}\" is not available in Hull; Hull has \"{Defaults.Snapshotter}\"");
    }

    // default_runtime / untrusted_workload_runtime of containerd 1.x: flag the removed runtime types they name.
    private static void CheckRemovedRuntime(object value, FieldContext context)
    {
        if (value is TomlTable table && table.TryGetValue<string>("runtime_type", out var type))
        {
            if (type == "io.containerd.runtime.v1.linux")
            {
                context.Deprecate(ConfigDeprecations.RuntimeV1, $"`{context.At.Path}` uses runtime type \"io.containerd.runtime.v1.linux\", removed in containerd 2.0");
            }
            else if (type == "io.containerd.runc.v1")
            {
                context.Deprecate(ConfigDeprecations.RuntimeRuncV1, $"`{context.At.Path}` uses runtime type \"io.containerd.runc.v1\", removed in containerd 2.0");
            }
        }
    }
}
