using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Linux.Namespaces;
using Hull.Sandbox.Namespaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox.Cni;

/// <summary>How the CNI manager of one configuration directory works (bound from config by hulld).</summary>
public sealed record CniOptions
{
    public required string ConfDir { get; init; }
    public required IReadOnlyList<string> BinDirs { get; init; }
    /// <summary>How many configs from <see cref="ConfDir"/> a pod is attached to; zero or less means all.</summary>
    public int MaxConfNum { get; init; } = 1;
    public bool SetupSerially { get; init; }
    /// <summary><c>ipv4</c> (or empty), <c>ipv6</c> or <c>cni</c>.</summary>
    public string IpPref { get; init; } = "";
    /// <summary>Bring <c>lo</c> up in-process instead of running the loopback plugin.</summary>
    public bool UseInternalLoopback { get; init; }
    /// <summary>The result cache's directory (it holds <c>results/</c>); persistent, because IPAM allocations are.</summary>
    public required string CacheDir { get; init; }
    /// <summary>Longest a single plugin call may take before it is killed.</summary>
    public TimeSpan PluginTimeout { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Attaches pod sandboxes to CNI networks, the way containerd's CRI plugin does through go-cni/libcni: a loopback
/// attachment (<c>lo</c>, network <c>cni-loopback</c>) plus one attachment per configured network (<c>eth0</c>,
/// <c>eth1</c>, …). Each ADD runs the list's plugins in order, passing <c>prevResult</c>; the final result is cached
/// with the exact config, CNI_ARGS and capability args used, and DEL and CHECK run with those. DEL runs plugins in
/// reverse, tolerates a netns that is gone (it still passes the path) and keeps going after a failing plugin,
/// reporting every failure at the end. A failed setup is torn down before the error is returned.
/// </summary>
public sealed class CniManager
{
    /// <summary>The loopback network's name and list, as go-cni's WithLoNetwork (0.3.1 for old plugin builds).</summary>
    public const string LoopbackNetworkName = "cni-loopback";
    public const string LoopbackInterface = "lo";
    private const string InterfacePrefix = "eth";

    private static readonly CniNetworkList LoopbackList = CniNetworkList.ParseList(
        Encoding.UTF8.GetBytes($$"""{"cniVersion":"0.3.1","name":"{{LoopbackNetworkName}}","plugins":[{"type":"loopback"}]}"""), "builtin");

    private readonly CniOptions _options;
    private readonly CniPluginInvoker _invoker;
    private readonly ILogger _logger;

    public CniManager(CniOptions options, ILogger<CniManager>? logger = null)
    {
        _options = options;
        _invoker = new CniPluginInvoker(options.BinDirs, options.PluginTimeout);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Watcher = new CniConfigWatcher(options.ConfDir, options.MaxConfNum);
        Cache = new CniResultCache(options.CacheDir);
    }

    public CniConfigWatcher Watcher { get; }
    public CniResultCache Cache { get; }

    /// <summary>The CRI <c>NetworkReady</c> condition, from the configuration on disk now.</summary>
    public CniStatus Status() => Watcher.Status();

    /// <summary>ADD: attaches the pod to loopback and every configured network; returns the pod IPs and the results.</summary>
    /// <exception cref="HullException">FailedPrecondition when no network is configured; the plugin's error otherwise.
    /// Whatever was attached has been detached again (DEL) when this throws.</exception>
    public async Task<PodNetworkStatus> SetupAsync(PodNetworkRequest request, CancellationToken cancellationToken = default)
    {
        using var activity = SandboxTelemetry.Source.StartActivity("CNI ADD");
        NamespacePinner.ValidateSandboxId(request.SandboxId);
        var snapshot = Watcher.Current();
        if (!snapshot.Ready)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{request.SandboxId}\": cannot set up the network: cni plugin not initialized: {snapshot.Error}");

        var args = CniArgs(request);
        var caps = CapabilityArgs(request);
        var targets = Targets(snapshot.Networks);
        try
        {
            if (_options.UseInternalLoopback)
                await NamespaceRunner.RunInAsync(request.NetNsPath, NamespaceTypes.Network, () => NetworkInterfaces.SetUp(LoopbackInterface))
                    .ConfigureAwait(false);
            // Loopback first (it is first in targets), then the networks; all at once unless setup_serially, as go-cni's
            // Setup attaches its loopback network alongside the others.
            Task<CniAttachment> Add((CniNetworkList List, string IfName) t) =>
                AddAsync(request, t.List, t.IfName, args, t.List == LoopbackList ? new JsonObject() : caps, cancellationToken);
            var attachments = new List<CniAttachment>();
            if (_options.SetupSerially)
            {
                foreach (var target in targets) attachments.Add(await Add(target).ConfigureAwait(false));
            }
            else
            {
                attachments.AddRange(await Task.WhenAll(targets.Select(Add)).ConfigureAwait(false));
            }

            var primary = attachments.FirstOrDefault(a => a.InterfaceName == InterfacePrefix + "0");
            var ips = primary is null ? [] : SelectPodIps(primary.Result.IpsOf(primary.InterfaceName), _options.IpPref);
            _logger.LogInformation("pod sandbox {SandboxId}: network set up, IPs {Ips}", request.SandboxId, string.Join(", ", ips));
            return new PodNetworkStatus(ips, attachments);
        }
        catch (Exception e)
        {
            // Undo with the same request, so IPAM allocations and veths of the plugins that did succeed are released.
            var undoErrors = await DeleteAllAsync(request, targets, CancellationToken.None).ConfigureAwait(false);
            string suffix = undoErrors.Count == 0 ? "" : $"; cleaning up also failed: {string.Join("; ", undoErrors.Select(u => u.Message))}";
            if (e is HullException h) throw new HullException(h.Kind, h.Message + suffix, h);
            if (e is OperationCanceledException) throw;
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{request.SandboxId}\": cannot set up the network: {e.Message}{suffix}", e);
        }
    }

    /// <summary>
    /// DEL: detaches the pod from every network it was attached to (the cached attachments, with their cached
    /// config) and from the currently configured ones. Safe to repeat; a cache entry is dropped only after its DEL
    /// succeeded, so a failed teardown can be retried with the same config.
    /// </summary>
    /// <exception cref="HullException">After trying every plugin of every network, listing each failure.</exception>
    public async Task TeardownAsync(PodNetworkRequest request, CancellationToken cancellationToken = default)
    {
        using var activity = SandboxTelemetry.Source.StartActivity("CNI DEL");
        NamespacePinner.ValidateSandboxId(request.SandboxId);
        var snapshot = Watcher.Current();
        var errors = await DeleteAllAsync(request, Targets(snapshot.Networks), cancellationToken).ConfigureAwait(false);
        if (errors.Count > 0)
            throw new HullException(errors.Count == 1 ? errors[0].Kind : ErrorKind.Internal,
                errors.Count == 1 ? errors[0].Message : $"pod sandbox \"{request.SandboxId}\": network teardown failed: {string.Join("; ", errors.Select(e => e.Message))}");
    }

    /// <summary>CHECK (cniVersion 0.4.0 and later, unless the list disables it) of every cached attachment of the pod.</summary>
    public async Task CheckAsync(PodNetworkRequest request, CancellationToken cancellationToken = default)
    {
        NamespacePinner.ValidateSandboxId(request.SandboxId);
        var cached = Cache.ReadAll(request.SandboxId);
        if (cached.Count == 0)
            throw new HullException(ErrorKind.NotFound, $"pod sandbox \"{request.SandboxId}\" has no cached CNI attachment to check");
        foreach (var a in cached)
        {
            if (a.Config.DisableCheck) continue;
            if (!a.Config.VersionAtLeast("0.4.0"))
            {
                _logger.LogDebug("pod sandbox {SandboxId}: network {Network} has cniVersion {Version}, which has no CHECK",
                    request.SandboxId, a.NetworkName, a.Config.CniVersion);
                continue;
            }
            var call = new CniInvocation("CHECK", request.SandboxId, a.ContainerId, request.NetNsPath, a.InterfaceName, a.CniArgs);
            foreach (var plugin in a.Config.Plugins)
                await _invoker.InvokeAsync(call, a.NetworkName, plugin,
                    plugin.BuildStdin(a.NetworkName, a.Config.CniVersion, a.Result?.Raw, a.CapabilityArgs), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The pod's network as cached on disk (after a restart): pod IPs from the primary attachment, and all attachments.</summary>
    public PodNetworkStatus? GetCachedStatus(string sandboxId)
    {
        NamespacePinner.ValidateSandboxId(sandboxId);
        var attachments = Cache.ReadAll(sandboxId).Where(a => a.Result is not null)
            .Select(a => new CniAttachment(a.NetworkName, a.InterfaceName, a.Result!)).ToList();
        if (attachments.Count == 0) return null;
        var primary = attachments.FirstOrDefault(a => a.InterfaceName == InterfacePrefix + "0");
        var ips = primary is null ? [] : SelectPodIps(primary.Result.IpsOf(primary.InterfaceName), _options.IpPref);
        return new PodNetworkStatus(ips, attachments);
    }

    /// <summary>
    /// The pod IPs in CRI order, as containerd's selectPodIPs: with <c>ipv4</c> (default) the first IPv4 address
    /// leads, with <c>ipv6</c> the first IPv6 one, with <c>cni</c> the plugin's order is kept; the rest follow in order.
    /// </summary>
    public static IReadOnlyList<IPAddress> SelectPodIps(IReadOnlyList<CniIpConfig> ips, string preference)
    {
        var all = ips.Select(i => i.Address).ToList();
        Func<IPAddress, bool>? first = preference switch
        {
            "ipv6" => a => a.AddressFamily == AddressFamily.InterNetworkV6,
            "cni" => null,
            _ => a => a.AddressFamily == AddressFamily.InterNetwork,
        };
        int index = first is null ? -1 : all.FindIndex(a => first(a));
        if (index > 0)
        {
            var lead = all[index];
            all.RemoveAt(index);
            all.Insert(0, lead);
        }
        return all;
    }

    private List<(CniNetworkList List, string IfName)> Targets(IReadOnlyList<CniNetworkList> networks)
    {
        var targets = new List<(CniNetworkList, string)>();
        if (!_options.UseInternalLoopback) targets.Add((LoopbackList, LoopbackInterface));
        for (int i = 0; i < networks.Count; i++) targets.Add((networks[i], InterfacePrefix + i));
        return targets;
    }

    private async Task<CniAttachment> AddAsync(PodNetworkRequest request, CniNetworkList list, string ifName,
        IReadOnlyList<KeyValuePair<string, string>> args, JsonObject caps, CancellationToken cancellationToken)
    {
        var call = new CniInvocation("ADD", request.SandboxId, request.SandboxId, request.NetNsPath, ifName, args);
        JsonObject? result = null;
        foreach (var plugin in list.Plugins)
        {
            var stdin = plugin.BuildStdin(list.Name, list.CniVersion, result, caps);
            result = await _invoker.InvokeAsync(call, list.Name, plugin, stdin, cancellationToken).ConfigureAwait(false);
            if (result is not null && result["cniVersion"] is null) result["cniVersion"] = list.CniVersion;
        }
        CniResult parsed;
        try
        {
            parsed = CniResult.Parse(result ?? new JsonObject(), list.CniVersion);
        }
        catch (FormatException e)
        {
            throw new HullException(ErrorKind.Internal,
                $"pod sandbox \"{request.SandboxId}\": network \"{list.Name}\" returned a result Hull cannot read: {e.Message}", e);
        }
        Cache.Write(new CniCachedAttachment(request.SandboxId, list.Name, ifName, request.NetNsPath, list, args, caps, parsed));
        _logger.LogDebug("pod sandbox {SandboxId}: attached to network {Network} as {Interface}", request.SandboxId, list.Name, ifName);
        return new CniAttachment(list.Name, ifName, parsed);
    }

    /// <summary>DEL of every cached attachment plus every target not cached, main networks in reverse, loopback last.</summary>
    private async Task<List<HullException>> DeleteAllAsync(PodNetworkRequest request, List<(CniNetworkList List, string IfName)> targets,
        CancellationToken cancellationToken)
    {
        var errors = new List<HullException>();
        IReadOnlyList<CniCachedAttachment> cached;
        try
        {
            cached = Cache.ReadAll(request.SandboxId);
        }
        catch (IOException e)
        {
            cached = [];
            errors.Add(new HullException(ErrorKind.Internal, $"pod sandbox \"{request.SandboxId}\": cannot read the CNI cache: {e.Message}", e));
        }

        var work = new List<(string Network, string IfName, Func<Task> Delete)>();
        foreach (var a in cached)
            work.Add((a.NetworkName, a.InterfaceName, () => DeleteAsync(request, a.Config, a.InterfaceName, a.CniArgs, a.CapabilityArgs, a.Result, cached: true, errors, cancellationToken)));
        var args = CniArgs(request);
        var caps = CapabilityArgs(request);
        foreach (var (list, ifName) in targets)
            if (!work.Any(w => w.Network == list.Name && w.IfName == ifName))
                work.Add((list.Name, ifName, () => DeleteAsync(request, list, ifName, args, caps, null, cached: false, errors, cancellationToken)));

        // Networks in reverse interface order, loopback after them.
        foreach (var w in work.OrderBy(w => w.IfName == LoopbackInterface ? 1 : 0).ThenByDescending(w => w.IfName.Length).ThenByDescending(w => w.IfName, StringComparer.Ordinal))
            await w.Delete().ConfigureAwait(false);
        return errors;
    }

    private async Task DeleteAsync(PodNetworkRequest request, CniNetworkList list, string ifName, IReadOnlyList<KeyValuePair<string, string>> args,
        JsonObject caps, CniResult? cachedResult, bool cached, List<HullException> errors, CancellationToken cancellationToken)
    {
        var call = new CniInvocation("DEL", request.SandboxId, request.SandboxId, request.NetNsPath, ifName, args);
        // Spec 0.4.0 and later: DEL gets the cached result as prevResult.
        var prev = list.VersionAtLeast("0.4.0") ? cachedResult?.Raw : null;
        int before = errors.Count;
        for (int i = list.Plugins.Count - 1; i >= 0; i--)
        {
            var plugin = list.Plugins[i];
            try
            {
                await _invoker.InvokeAsync(call, list.Name, plugin, plugin.BuildStdin(list.Name, list.CniVersion, prev, caps), cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (HullException e)
            {
                _logger.LogWarning("{Error}", e.Message);
                errors.Add(e);
            }
        }
        if (errors.Count == before && cached)
        {
            try
            {
                Cache.Delete(list.Name, request.SandboxId, ifName);
            }
            catch (IOException e)
            {
                errors.Add(new HullException(ErrorKind.Internal, $"pod sandbox \"{request.SandboxId}\": cannot delete the CNI cache entry: {e.Message}", e));
            }
        }
    }

    /// <summary>CNI_ARGS as containerd sets them: IgnoreUnknown=1 so plugins that do not know the K8S_ keys accept them.</summary>
    private static List<KeyValuePair<string, string>> CniArgs(PodNetworkRequest r) =>
    [
        new("IgnoreUnknown", "1"),
        new("K8S_POD_NAMESPACE", r.PodNamespace),
        new("K8S_POD_NAME", r.PodName),
        new("K8S_POD_INFRA_CONTAINER_ID", r.SandboxId),
        new("K8S_POD_UID", r.PodUid),
    ];

    private static JsonObject CapabilityArgs(PodNetworkRequest r)
    {
        var caps = new JsonObject();
        var ports = r.PortMappings.Where(p => p.HostPort > 0).ToList();
        if (ports.Count > 0)
            caps["portMappings"] = new JsonArray(ports.Select(p => (JsonNode)new JsonObject
            {
                ["hostPort"] = p.HostPort,
                ["containerPort"] = p.ContainerPort,
                ["protocol"] = p.Protocol.ToLowerInvariant(),
                ["hostIP"] = p.HostIp,
            }).ToArray());
        if (r.Bandwidth is { } b)
            caps["bandwidth"] = new JsonObject
            {
                ["ingressRate"] = b.IngressRate,
                ["ingressBurst"] = b.IngressBurst,
                ["egressRate"] = b.EgressRate,
                ["egressBurst"] = b.EgressBurst,
            };
        if (r.Dns is { } d)
            caps["dns"] = new JsonObject
            {
                ["servers"] = new JsonArray(d.Servers.Select(s => (JsonNode)s).ToArray()),
                ["searches"] = new JsonArray(d.Searches.Select(s => (JsonNode)s).ToArray()),
                ["options"] = new JsonArray(d.Options.Select(s => (JsonNode)s).ToArray()),
            };
        if (!string.IsNullOrEmpty(r.CgroupPath)) caps["cgroupPath"] = r.CgroupPath;
        if (r.Annotations.Count > 0)
        {
            var annotations = new JsonObject();
            foreach (var (k, v) in r.Annotations.OrderBy(kv => kv.Key, StringComparer.Ordinal)) annotations[k] = v;
            caps["io.kubernetes.cri.pod-annotations"] = annotations;
        }
        foreach (var (k, v) in r.ExtraCapabilityArgs) caps[k] = v?.DeepClone();
        return caps;
    }
}
