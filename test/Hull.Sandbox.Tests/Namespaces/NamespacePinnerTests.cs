using System.Net;
using System.Net.Sockets;
using Hull.Core;
using Hull.Linux;
using Hull.Linux.Namespaces;
using Hull.Sandbox.Namespaces;

namespace Hull.Sandbox.Tests.Namespaces;

public sealed class NamespacePinnerTests : IDisposable
{
    private readonly TempDirectory _state = new();
    private readonly NamespacePinner _pinner;

    public NamespacePinnerTests() => _pinner = new NamespacePinner(_state.Path);

    public void Dispose()
    {
        try
        {
            foreach (var id in _pinner.ListSandboxIds()) _pinner.Remove(id);
        }
        finally
        {
            _state.Dispose();
        }
    }

    private static ulong InodeOfOwn(string kind) =>
        ulong.Parse(new FileInfo($"/proc/self/ns/{kind}").LinkTarget!.Split('[', ']')[1]);

    [RootFact]
    public async Task Pin_creates_new_net_ipc_and_uts_namespaces_bind_mounted_under_state_ns()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("pod1"));

        Assert.Equal(Path.Combine(_state.Path, "ns", "net", "pod1"), pinned.NetworkPath);
        Assert.Equal(Path.Combine(_state.Path, "ns", "ipc", "pod1"), pinned.IpcPath);
        Assert.Equal(Path.Combine(_state.Path, "ns", "uts", "pod1"), pinned.UtsPath);
        foreach (var kind in NamespacePinner.Kinds)
        {
            var path = pinned.PathOf(kind)!;
            Assert.True(_pinner.IsPinned("pod1", kind));
            Assert.True(LinuxNamespaces.IsNamespace(path));
            Assert.NotEqual(InodeOfOwn(LinuxNamespaces.ProcName(kind)), FileStatus.Get(path).Inode); // not the node's
            Assert.Contains(path, Hull.Linux.MountInfo.PointsBelow(_state.Path));
        }
        Assert.Equal(["pod1"], _pinner.ListSandboxIds());
    }

    [RootFact]
    public async Task Only_the_requested_namespaces_are_pinned()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("netonly") { Namespaces = NamespaceTypes.Network });

        Assert.NotNull(pinned.NetworkPath);
        Assert.Null(pinned.IpcPath);
        Assert.Null(pinned.UtsPath);
        Assert.False(File.Exists(_pinner.PathOf("netonly", NamespaceTypes.Ipc)));
    }

    [RootFact]
    public async Task Hostname_and_namespaced_sysctls_are_set_in_the_pod_namespaces_only()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("pod2")
        {
            Hostname = "pod-two",
            Sysctls = new Dictionary<string, string>
            {
                ["net.ipv4.ip_unprivileged_port_start"] = "77",
                ["kernel/shmmni"] = "1234", // slash form
            },
        });

        var inside = (
            Hostname: await NamespaceRunner.RunInAsync(pinned.UtsPath!, NamespaceTypes.Uts, () => File.ReadAllText("/proc/sys/kernel/hostname").Trim()),
            PortStart: await NamespaceRunner.RunInAsync(pinned.NetworkPath!, NamespaceTypes.Network,
                () => File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim()),
            Shmmni: await NamespaceRunner.RunInAsync(pinned.IpcPath!, NamespaceTypes.Ipc, () => File.ReadAllText("/proc/sys/kernel/shmmni").Trim()));
        Assert.Equal(("pod-two", "77", "1234"), inside);

        // The node keeps its own values (compared with the pod's, as other tests may run on this node meanwhile).
        Assert.NotEqual("pod-two", File.ReadAllText("/proc/sys/kernel/hostname").Trim());
        Assert.NotEqual("77", File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim());
        Assert.NotEqual("1234", File.ReadAllText("/proc/sys/kernel/shmmni").Trim());
    }

    [RootFact]
    public async Task A_sysctl_outside_the_pod_namespaces_is_refused_and_nothing_is_left_behind()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest("pod3")
        {
            Sysctls = new Dictionary<string, string> { ["kernel.panic"] = "1" },
        }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("kernel.panic", e.Message);
        Assert.Contains("pod3", e.Message);

        var e2 = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest("pod3")
        {
            Namespaces = NamespaceTypes.Ipc,
            Sysctls = new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" },
        }));
        Assert.Contains("needs the pod's own network namespace", e2.Message);

        // A sysctl the kernel does not have fails inside the pin thread: the files made before are cleaned up.
        var e3 = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest("pod3")
        {
            Sysctls = new Dictionary<string, string> { ["net.ipv4.no_such_sysctl"] = "1" },
        }));
        Assert.Equal(ErrorKind.InvalidArgument, e3.Kind);
        Assert.Empty(_pinner.ListSandboxIds());
        Assert.DoesNotContain(Hull.Linux.MountInfo.PointsBelow(_pinner.NamespaceDirectory), p => p != _pinner.NamespaceDirectory);
    }

    [RootFact]
    public async Task Pinning_a_sandbox_twice_is_AlreadyExists()
    {
        await _pinner.PinAsync(new NamespacePinRequest("twice"));
        var e = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest("twice")));
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
        Assert.Contains("\"twice\"", e.Message);
        Assert.True(_pinner.IsPinned("twice", NamespaceTypes.Network)); // the first pin is untouched
    }

    [RootFact]
    public async Task Remove_unmounts_and_deletes_every_pin_and_is_idempotent()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("gone"));

        _pinner.Remove("gone");
        _pinner.Remove("gone");

        foreach (var kind in NamespacePinner.Kinds)
        {
            Assert.False(File.Exists(pinned.PathOf(kind)));
            Assert.False(_pinner.IsPinned("gone", kind));
        }
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), line => line.Contains("/gone "));
        Assert.Empty(_pinner.ListSandboxIds());
    }

    [RootFact]
    public async Task A_leftover_empty_file_from_a_crash_is_reused()
    {
        var path = _pinner.PathOf("crashed", NamespaceTypes.Network);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, []);
        Assert.False(_pinner.IsPinned("crashed", NamespaceTypes.Network));

        await _pinner.PinAsync(new NamespacePinRequest("crashed"));
        Assert.True(_pinner.IsPinned("crashed", NamespaceTypes.Network));
    }

    [Fact]
    public async Task A_hostname_the_kernel_would_refuse_is_InvalidArgument()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest("host") { Hostname = new string('h', 65) }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        var e2 = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest("host")
        {
            Namespaces = NamespaceTypes.Network, Hostname = "h",
        }));
        Assert.Contains("private UTS namespace", e2.Message);
    }

    [Fact]
    public async Task Invalid_sandbox_ids_are_refused()
    {
        foreach (var id in (string[])["", "../x", "a/b", ".hidden", "-x"])
        {
            var e = await Assert.ThrowsAsync<HullException>(() => _pinner.PinAsync(new NamespacePinRequest(id)));
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        }
    }

    [RootFact]
    public async Task Running_in_a_missing_namespace_is_NotFound()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => NamespaceRunner.RunInAsync(_state.Sub("nope"), NamespaceTypes.Network, () => { }));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains(_state.Sub("nope"), e.Message);

        await File.WriteAllBytesAsync(_state.Sub("plain"), []); // a file that is not a namespace
        await Assert.ThrowsAsync<HullException>(() => NamespaceRunner.RunInAsync(_state.Sub("plain"), NamespaceTypes.Network, () => { }));
    }

    [RootFact]
    public async Task Code_run_in_a_netns_sees_only_that_netns_and_its_sockets_stay_there()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("sock") { Namespaces = NamespaceTypes.Network });
        int callerThread = Environment.CurrentManagedThreadId;

        // A fresh netns has a lo that is down: nothing can listen on 127.0.0.1 there until it is up.
        var names = await NamespaceRunner.RunInAsync(pinned.NetworkPath!, NamespaceTypes.Network,
            () => System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces().Select(i => i.Name).ToList());
        Assert.Equal(["lo"], names);
        await Assert.ThrowsAnyAsync<SocketException>(() => NamespaceRunner.RunInAsync(pinned.NetworkPath!, NamespaceTypes.Network, () =>
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            s.Listen();
            using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            c.Connect(s.LocalEndPoint!);
        }));

        // What use_internal_loopback does; then a listener made in the netns is reachable only from inside it.
        await NamespaceRunner.RunInAsync(pinned.NetworkPath!, NamespaceTypes.Network, () => NetworkInterfaces.SetUp("lo"));
        var (listener, threadId) = await NamespaceRunner.RunInAsync(pinned.NetworkPath!, NamespaceTypes.Network, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            s.Listen();
            return (s, Environment.CurrentManagedThreadId);
        });
        Assert.NotEqual(callerThread, threadId);
        using (listener)
        {
            int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            var inside = await NamespaceRunner.RunInAsync(pinned.NetworkPath!, NamespaceTypes.Network,
                () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using (inside)
            {
                await inside.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)); // connects from any thread: the socket is in the netns
                using var accepted = await listener.AcceptAsync();
            }
            using var outside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await Assert.ThrowsAnyAsync<SocketException>(() => outside.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)));
        }
    }
}
