using Hull.Config;
using Hull.Runtime.Spec;
using Hull.Sandbox.MicroVm;
using Hulld.Composition;

namespace Hulld.Tests;

/// <summary>How hulld turns the config into its libraries' options: each value final, each default from the schema.</summary>
public sealed class BoundOptionsTests
{
    private static BoundOptions Bind(string toml)
    {
        var loaded = ConfigLoader.LoadText(toml, "test.toml");
        Assert.False(loaded.HasErrors, ConfigCommandsLogic.Format(loaded.Diagnostics));
        return BoundOptions.Bind(loaded.Config);
    }

    [Fact]
    public void Cni_options_come_from_the_cni_section_and_a_handler_may_have_its_own_dir_and_count()
    {
        var bound = Bind("""
            version = 3
            root = "/var/lib/hull-x"
            [plugins.'io.containerd.cri.v1.runtime'.cni]
            bin_dirs = ["/a", "/b"]
            conf_dir = "/etc/x"
            max_conf_num = 2
            ip_pref = "ipv6"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]
            cni_conf_dir = "/etc/kata"
            cni_max_conf_num = 1
            """);
        Assert.Equal(["/a", "/b"], bound.Cni.BinDirs);
        Assert.Equal("/etc/x", bound.Cni.ConfDir);
        Assert.Equal(2, bound.Cni.MaxConfNum);
        Assert.Equal("ipv6", bound.Cni.IpPref);
        Assert.Equal("/var/lib/hull-x/cni", bound.Cni.CacheDir);
        var runc = bound.Handlers.Single(h => h.Name == "runc");
        Assert.Equal(("/etc/x", 2), (runc.CniConfDir, runc.CniMaxConfNum));
        var kata = bound.Handlers.Single(h => h.Name == "kata");
        Assert.Equal(("/etc/kata", 1), (kata.CniConfDir, kata.CniMaxConfNum));
    }

    [Fact]
    public void A_handler_is_resolved_once_with_every_value_final()
    {
        var bound = Bind("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
            pod_annotations = ["io.example/*"]
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
            BinaryName = "crun"
            Root = "/run/crun"
            SystemdCgroup = true
            """);
        var crun = bound.Handlers.Single(h => h.Name == "crun");
        Assert.Equal("crun", crun.RuntimeBinary);
        Assert.Equal("/run/crun", crun.RuntimeRoot);
        Assert.Equal(CgroupDriver.Systemd, crun.CgroupDriver);
        Assert.Equal("podsandbox", crun.Sandboxer);
        Assert.Equal("overlayfs", crun.Snapshotter);
        Assert.Equal(["io.example/*"], crun.PodAnnotations);
        var runc = bound.Handlers.Single(h => h.Name == "runc");
        Assert.Equal(("runc", CgroupDriver.Cgroupfs), (runc.RuntimeBinary, runc.CgroupDriver));
        Assert.Equal("runc", bound.DefaultHandler);
    }

    [Fact]
    public void A_microvm_handler_gets_its_own_vm_settings_and_other_handlers_none()
    {
        var bound = Bind("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.vm]
            sandboxer = "microvm"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.vm.microvm]
            qemu_path = "/opt/qemu/bin/qemu-system-x86_64"
            kernel_path = "/boot/vmlinux"
            initrd_path = "/boot/initrd.cpio"
            memory_mib = 512
            vcpus = 2
            accel = "kvm"
            boot_timeout = "30s"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.small]
            sandboxer = "microvm"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.microvm]
            memory_mib = 1024
            """);
        Assert.Equal("microvm", bound.Handlers.Single(h => h.Name == "vm").Sandboxer);
        Assert.Equal(["small", "vm"], bound.MicroVm.Handlers.Keys.Order());
        var vm = bound.MicroVm.Handlers["vm"];
        Assert.Equal(("/opt/qemu/bin/qemu-system-x86_64", "/boot/vmlinux", "/boot/initrd.cpio"), (vm.QemuPath, vm.KernelPath, vm.InitrdPath));
        Assert.Equal((512, 2, MicroVmAccel.Kvm, TimeSpan.FromSeconds(30)), (vm.MemoryMiB, vm.Vcpus, vm.Accel, vm.BootTimeout));
        // The config model's defaults are the sandboxer's.
        Assert.Equal(new MicroVmOptions(), bound.MicroVm.Handlers["small"]);
        Assert.Equal("/run/hull", bound.MicroVm.StateDirectory);
    }

    [Theory]
    [InlineData("sandboxer = \"kata\"", "sandboxer")]
    [InlineData("microvm.accel = \"hvf\"", "accel")]
    [InlineData("microvm.memory_mib = 0", "memory_mib")]
    [InlineData("microvm.boot_timeout = \"0s\"", "boot_timeout")]
    public void Bad_microvm_settings_are_config_errors_naming_the_key(string line, string key)
    {
        var loaded = ConfigLoader.LoadText($"version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.vm]\n{line}\n", "test.toml");
        Assert.True(loaded.HasErrors);
        Assert.Contains(loaded.Diagnostics, d => d.ToString().Contains(key, StringComparison.Ordinal));
    }

    [Fact]
    public void Defaults_are_containerds()
    {
        var bound = BoundOptions.Bind(ConfigLoader.Defaults().Config);
        Assert.Equal("/opt/containerd/image-verifier/bin", bound.Images.Verifiers.BinDir);
        Assert.Equal(10, bound.Images.Verifiers.MaxVerifiers);
        Assert.Equal(TimeSpan.FromSeconds(10), bound.Images.Verifiers.PerVerifierTimeout);
        Assert.True(bound.Specs.TolerateMissingHugetlbController);
        Assert.True(bound.Specs.DisableHugetlbController);
        Assert.True(bound.PodSandbox.EnableUnprivilegedPorts);
        Assert.Equal(("/var/lib/hull", "/run/hull", "/run/hull/hull.sock"), (bound.Root, bound.State, bound.Socket.Address));
    }

    [Fact]
    public void Node_conditions_are_off_by_default_and_share_the_ignored_deprecations_with_CRI_Status()
    {
        Assert.False(BoundOptions.Bind(ConfigLoader.Defaults().Config).NodeConditions.Enable);
        Assert.Equal(TimeSpan.FromMinutes(5), BoundOptions.Bind(ConfigLoader.Defaults().Config).NodeConditions.ResyncInterval);
        var bound = Bind("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime']
            ignore_deprecation_warnings = ["io.containerd.deprecation/cgroup-v1"]
            [plugins.'io.hull.kube.v1.node-conditions']
            enable = true
            kubeconfig = "/etc/kubernetes/kubelet.conf"
            node_name = "worker-1"
            resync_interval = "30s"
            """);
        Assert.Equal((true, "/etc/kubernetes/kubelet.conf", "worker-1", TimeSpan.FromSeconds(30)),
            (bound.NodeConditions.Enable, bound.NodeConditions.Kubeconfig, bound.NodeConditions.NodeName, bound.NodeConditions.ResyncInterval));
        Assert.Equal(["io.containerd.deprecation/cgroup-v1"], bound.NodeConditions.IgnoredDeprecations);
        Assert.Same(bound.Cri.IgnoredDeprecations, bound.NodeConditions.IgnoredDeprecations);
    }
}
