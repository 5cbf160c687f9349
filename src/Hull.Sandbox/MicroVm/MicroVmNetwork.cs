using System.Globalization;
using System.Text;
using System.Text.Json;
using Hull.Core;
using Hull.Core.Processes;

namespace Hull.Sandbox.MicroVm;

/// <summary>A route the guest adds: CIDR destination, gateway ("" on-link), device.</summary>
public sealed record GuestRoute(string Destination, string Gateway, string Device);

/// <summary>What the guest's NIC becomes: the CNI interface's MAC, MTU, addresses and routes, moved into the VM.</summary>
public sealed record GuestNetwork(TapDevice Tap, string HostInterface, int Mtu, IReadOnlyList<string> Addresses, IReadOnlyList<GuestRoute> Routes);

/// <summary>
/// Connects a VM to the pod's CNI network the way Kata's tcfilter model does: a TAP device in the pod's network
/// namespace, and tc mirred redirects in both directions between it and the CNI interface (eth0), so every frame of
/// the veth reaches the guest's NIC and back. The guest NIC takes eth0's MAC and the guest configures eth0's
/// addresses and routes, as read from the namespace after CNI ADD; the host side's copy of them never sees a packet
/// (the ingress redirect takes every frame before the host's stack does). The tools are iproute2's ip and tc, run in
/// the namespace through nsenter.
/// </summary>
public static class MicroVmNetwork
{
    public const string TapName = "tap0_hull";
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Creates the TAP and the redirects; reads what the guest must configure. Undoes itself on failure.</summary>
    public static async Task<GuestNetwork> ConnectAsync(string netNsPath, string sandboxId, CancellationToken cancellationToken,
        string hostInterface = GuestPaths.Interface)
    {
        var link = await ReadLinkAsync(netNsPath, hostInterface, sandboxId, cancellationToken).ConfigureAwait(false);
        var routes = await ReadRoutesAsync(netNsPath, hostInterface, cancellationToken).ConfigureAwait(false);
        try
        {
            await RunAsync(netNsPath, "ip", $"""
                tuntap add dev {TapName} mode tap
                link set dev {TapName} mtu {link.Mtu} up
                """, sandboxId, cancellationToken).ConfigureAwait(false);
            await RunAsync(netNsPath, "tc", $"""
                qdisc add dev {hostInterface} ingress
                filter add dev {hostInterface} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev {TapName}
                qdisc add dev {TapName} ingress
                filter add dev {TapName} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev {hostInterface}
                """, sandboxId, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await DisconnectAsync(netNsPath, sandboxId, CancellationToken.None, hostInterface).ConfigureAwait(false);
            throw;
        }
        return new GuestNetwork(new TapDevice(TapName, link.Mac), hostInterface, link.Mtu, link.Addresses, routes);
    }

    /// <summary>Removes the TAP (its redirect with it) and eth0's ingress redirect; idempotent, quiet about what is already gone.</summary>
    public static async Task DisconnectAsync(string netNsPath, string sandboxId, CancellationToken cancellationToken,
        string hostInterface = GuestPaths.Interface)
    {
        if (!File.Exists(netNsPath)) return;
        // -force: go on after a failing line (the device or qdisc was never made, or is gone with the veth).
        await RunAsync(netNsPath, "ip", $"link del dev {TapName}", sandboxId, cancellationToken, tolerateFailure: true).ConfigureAwait(false);
        await RunAsync(netNsPath, "tc", $"qdisc del dev {hostInterface} ingress", sandboxId, cancellationToken, tolerateFailure: true)
            .ConfigureAwait(false);
    }

    private sealed record Link(string Mac, int Mtu, IReadOnlyList<string> Addresses);

    private static async Task<Link> ReadLinkAsync(string netNsPath, string name, string sandboxId, CancellationToken cancellationToken)
    {
        using var doc = JsonDocument.Parse(await QueryAsync(netNsPath, ["-j", "addr", "show", "dev", name], sandboxId, cancellationToken).ConfigureAwait(false));
        if (doc.RootElement.GetArrayLength() == 0)
            throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{sandboxId}\": CNI left no {name} in the pod's network namespace");
        var link = doc.RootElement[0];
        var addresses = new List<string>();
        if (link.TryGetProperty("addr_info", out var infos))
            foreach (var info in infos.EnumerateArray())
            {
                // Link-local addresses are the guest kernel's own business.
                if (info.TryGetProperty("scope", out var scope) && scope.GetString() != "global") continue;
                addresses.Add($"{info.GetProperty("local").GetString()}/{info.GetProperty("prefixlen").GetInt32().ToString(CultureInfo.InvariantCulture)}");
            }
        return new Link(link.GetProperty("address").GetString() ?? "", link.GetProperty("mtu").GetInt32(), addresses);
    }

    /// <summary>eth0's routes that CNI added (not the kernel's own subnet routes, not IPv6 link-local), on-link ones first.</summary>
    private static async Task<IReadOnlyList<GuestRoute>> ReadRoutesAsync(string netNsPath, string device, CancellationToken cancellationToken)
    {
        var routes = new List<GuestRoute>();
        foreach (var family in new[] { "-4", "-6" })
        {
            using var doc = JsonDocument.Parse(await QueryAsync(netNsPath, [family, "-j", "route", "show", "dev", device], "", cancellationToken).ConfigureAwait(false));
            foreach (var route in doc.RootElement.EnumerateArray())
            {
                if (route.TryGetProperty("protocol", out var protocol) && protocol.GetString() == "kernel") continue;
                if (route.TryGetProperty("type", out var type) && type.GetString() is { } t && t != "unicast") continue;
                var dst = route.GetProperty("dst").GetString() ?? "";
                if (dst.StartsWith("fe80:", StringComparison.OrdinalIgnoreCase)) continue;
                if (dst == "default") dst = family == "-4" ? "0.0.0.0/0" : "::/0";
                var gateway = route.TryGetProperty("gateway", out var g) ? g.GetString() ?? "" : "";
                routes.Add(new GuestRoute(dst, gateway, device));
            }
        }
        return routes.OrderBy(r => r.Gateway.Length == 0 ? 0 : 1).ToList();
    }

    private static async Task<string> QueryAsync(string netNsPath, IReadOnlyList<string> ipArgs, string sandboxId, CancellationToken cancellationToken)
    {
        var outcome = await ProcessRunner.RunAsync(new ProcessSpec("nsenter", [$"--net={netNsPath}", "--", "ip", .. ipArgs]) { Timeout = ToolTimeout },
            cancellationToken).ConfigureAwait(false);
        if (outcome.ExitCode != 0)
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{sandboxId}\": ip {string.Join(' ', ipArgs)}: {outcome.Stderr}");
        var text = outcome.StdoutText.Trim();
        return text.Length == 0 ? "[]" : text;
    }

    /// <summary>Runs a batch of ip or tc commands (one per line) in the namespace.</summary>
    private static async Task RunAsync(string netNsPath, string tool, string batch, string sandboxId, CancellationToken cancellationToken,
        bool tolerateFailure = false)
    {
        var args = new List<string> { $"--net={netNsPath}", "--", tool };
        if (tolerateFailure) args.Add("-force");
        args.AddRange(["-batch", "-"]);
        var outcome = await ProcessRunner.RunAsync(new ProcessSpec("nsenter", args)
        {
            Stdin = Encoding.UTF8.GetBytes(batch.ReplaceLineEndings("\n") + "\n"),
            Timeout = ToolTimeout,
        }, cancellationToken).ConfigureAwait(false);
        if (outcome.ExitCode != 0 && !tolerateFailure)
            throw new HullException(ErrorKind.Internal,
                $"pod sandbox \"{sandboxId}\": connecting the microVM to the pod network: {tool}: {outcome.Stderr} (commands: {batch.ReplaceLineEndings("; ")})");
    }
}
