using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Sandbox.MicroVm;

namespace Hull.Sandbox.Tests.MicroVm;

/// <summary>The host OCI config turned into the one runc runs in the guest.</summary>
public sealed class GuestSpecTests
{
    private const string Id = "c0ffee";

    private static JsonObject HostConfig() => JsonNode.Parse("""
        {
          "ociVersion": "1.0.2",
          "hostname": "pod",
          "process": { "args": ["sh"], "terminal": false, "apparmorProfile": "cri-default", "cwd": "/" },
          "root": { "path": "rootfs", "readonly": false },
          "hooks": { "prestart": [ { "path": "/usr/bin/hook" } ] },
          "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/etc/hosts", "type": "bind", "source": "/run/hull/sandboxes/p/hosts", "options": ["rbind", "ro"] },
            { "destination": "/dev/shm", "type": "bind", "source": "/run/hull/shm", "options": ["rbind"] },
            { "destination": "/data", "source": "/srv/data", "options": ["bind", "rw"] }
          ],
          "linux": {
            "namespaces": [
              { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
              { "type": "network", "path": "/run/hull/ns/net/p" }
            ],
            "sysctl": { "net.ipv4.ip_forward": "1" },
            "devices": [ { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229 } ],
            "cgroupsPath": "/kubepods/pod1/c0ffee",
            "mountLabel": "x"
          }
        }
        """)!.AsObject();

    [Fact]
    public void The_rootfs_and_bind_sources_move_under_the_share_and_shm_to_the_guest_tmpfs()
    {
        var (config, shares) = GuestSpec.Rewrite(HostConfig(), "/run/hull/containers/c0ffee/bundle", Id);

        Assert.Equal("/run/hull/shared/c0ffee/rootfs", config["root"]!["path"]!.GetValue<string>());
        var mounts = config["mounts"]!.AsArray();
        Assert.Equal("proc", mounts[0]!["source"]!.GetValue<string>());
        Assert.Equal("/run/hull/shared/c0ffee/m1", mounts[1]!["source"]!.GetValue<string>());
        Assert.Equal(GuestPaths.ShmDirectory, mounts[2]!["source"]!.GetValue<string>());
        Assert.Equal("/run/hull/shared/c0ffee/m3", mounts[3]!["source"]!.GetValue<string>());
        Assert.Equal([
            new SharedPath("/run/hull/containers/c0ffee/bundle/rootfs", null),
            new SharedPath("/run/hull/sandboxes/p/hosts", 1),
            new SharedPath("/srv/data", 3),
        ], shares);
    }

    [Fact]
    public void A_private_tmpfs_on_dev_shm_becomes_a_bind_of_the_pods_shm_in_the_guest()
    {
        // A pod's IPC namespace is the guest's, so its containers share the guest's /dev/shm even when the host spec
        // kept runc's default private tmpfs there (the pod's shm lives in the guest, not on the host).
        var host = HostConfig();
        host["mounts"]!.AsArray()[2] = new JsonObject
        {
            ["destination"] = "/dev/shm", ["type"] = "tmpfs", ["source"] = "shm",
            ["options"] = new JsonArray("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        };

        var (config, shares) = GuestSpec.Rewrite(host, "/b", Id);

        var shm = config["mounts"]!.AsArray()[2]!;
        Assert.Equal("bind", shm["type"]!.GetValue<string>());
        Assert.Equal(GuestPaths.ShmDirectory, shm["source"]!.GetValue<string>());
        Assert.Contains("rbind", shm["options"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.DoesNotContain(shares, s => s.MountIndex == 2);
    }

    [Fact]
    public void The_VM_namespaces_and_host_only_settings_go_and_the_cgroup_is_where_the_agent_reads_it()
    {
        var (config, _) = GuestSpec.Rewrite(HostConfig(), "/b", Id);

        var namespaces = config["linux"]!["namespaces"]!.AsArray().Select(n => n!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(["pid", "mount"], namespaces);
        Assert.Null(config["hostname"]);
        Assert.Null(config["hooks"]);
        Assert.Null(config["process"]!["apparmorProfile"]);
        Assert.Null(config["linux"]!["sysctl"]);
        Assert.Null(config["linux"]!["devices"]);
        Assert.Null(config["linux"]!["mountLabel"]);
        Assert.Equal("/hull/c0ffee", config["linux"]!["cgroupsPath"]!.GetValue<string>());
    }

    [Fact]
    public void A_pod_shared_PID_namespace_is_the_guests_and_the_host_config_is_left_alone()
    {
        var host = HostConfig();
        host["linux"]!["namespaces"]!.AsArray()[0] = new JsonObject { ["type"] = "pid", ["path"] = GuestPaths.SharedPidNamespace };
        var before = host.ToJsonString();

        var (config, _) = GuestSpec.Rewrite(host, "/b", Id);

        Assert.Equal(GuestPaths.SharedPidNamespace, config["linux"]!["namespaces"]![0]!["path"]!.GetValue<string>());
        Assert.Equal(before, host.ToJsonString());
    }

    [Fact]
    public void A_user_namespace_is_refused_with_the_containers_name()
    {
        var host = HostConfig();
        host["linux"]!["namespaces"]!.AsArray().Add(new JsonObject { ["type"] = "user" });

        var e = Assert.Throws<HullException>(() => GuestSpec.Rewrite(host, "/b", Id));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"c0ffee\"", e.Message);
        Assert.Contains("user namespaces", e.Message);
    }

    [Fact]
    public void An_exec_process_is_the_containers_with_other_arguments_and_its_own_terminal()
    {
        var (config, _) = GuestSpec.Rewrite(HostConfig(), "/b", Id);

        var process = GuestSpec.ExecProcess(config, Id, ["ls", "-l"], terminal: true, (80, 24));

        Assert.Equal(["ls", "-l"], process["args"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.True(process["terminal"]!.GetValue<bool>());
        Assert.Equal("""{"height":24,"width":80}""", process["consoleSize"]!.ToJsonString());
        Assert.Equal("/", process["cwd"]!.GetValue<string>());
        Assert.Equal(["sh"], config["process"]!["args"]!.AsArray().Select(a => a!.GetValue<string>()));
    }
}
