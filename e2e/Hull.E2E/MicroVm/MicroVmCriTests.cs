using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;

namespace Hull.E2E.MicroVm;

/// <summary>
/// A pod on a runtime handler whose sandboxer is <c>microvm</c>, driven over the CRI socket as the kubelet does: the
/// image comes from the local registry, its snapshot reaches the guest over 9p, the kubelet's log file is written on
/// the host. One VM boot under TCG: about 40 s.
/// </summary>
public sealed class MicroVmCriTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(120);

    private const string Handler = """
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.microvm]
          runtime_type = 'io.containerd.runc.v2'
          sandboxer = 'microvm'
        """;

    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd, "runc", "conmon", "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter", "tc", "ip", "iptables-save",
        "docker-registry", "skopeo", "umoci")]
    public async Task A_pod_on_the_microvm_handler_runs_an_image_on_the_guest_kernel_and_leaves_nothing()
    {
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry, Handler);
        var podConfig = PodTestEnvironment.PodConfig("vm-pod");
        podConfig.LogDirectory = Path.Combine(env.Dir, "logs", "vm-pod");
        var pod = await env.RunPodAsync(podConfig, "microvm");
        var status = await env.StatusAsync(pod);
        Assert.Equal(PodSandboxState.SandboxReady, status.Status.State);
        Assert.Equal("microvm", status.Status.RuntimeHandler);
        Assert.StartsWith(env.SubnetPrefix, status.Status.Network.Ip);

        // hullctl info names the accelerator the handler's VMs run under, the one this pod's VM got.
        var info = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["--address", env.Hulld.Socket, "info"]);
        Assert.Equal(0, info.ExitCode);
        var accel = System.Text.RegularExpressions.Regex.Match(info.Stdout, @"\nmicrovm\s+microvm\s+accelerator=(kvm|tcg), accelerator_reason=");
        Assert.True(accel.Success, info.Stdout);
        var verbose = await env.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod, Verbose = true });
        Assert.Contains($"\"accel\": \"{accel.Groups[1].Value}\"", verbose.Info["info"]);

        var busybox = pushed.Images.Busybox;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));
        string uname = await CreateAsync(env, pod, podConfig, "uname", busybox.Reference, ["/bin/uname", "-r"]);
        await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = uname }, deadline: CriClient.In(Long));
        var exited = await WaitExitedAsync(env, uname);
        Assert.Equal(0, exited.Status.ExitCode);
        var log = await MicroVmPodEnvironment.WaitForLogAsync(exited.Status.LogPath, MicroVmTestSupport.GuestKernelRelease);
        Assert.DoesNotContain((await File.ReadAllTextAsync("/proc/sys/kernel/osrelease")).Trim(), log);

        string app = await CreateAsync(env, pod, podConfig, "app", busybox.Reference,
            ["/bin/sh", "-c", "echo ready; trap 'exit 0' TERM; while true; do sleep 0.2; done"]);
        await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = app }, deadline: CriClient.In(Long));
        var exec = new ExecSyncRequest { ContainerId = app, Timeout = 60 };
        exec.Cmd.AddRange(["/bin/sh", "-c", "ip -4 addr show eth0; uname -r; exit 5"]);
        var result = await env.Cri.Runtime.ExecSyncAsync(exec, deadline: CriClient.In(Long));
        Assert.Equal(5, result.ExitCode);
        Assert.Contains(status.Status.Network.Ip, result.Stdout.ToStringUtf8());
        Assert.Contains(MicroVmTestSupport.GuestKernelRelease, result.Stdout.ToStringUtf8());

        // A limit update reaches the container's cgroup in the guest (the agent runs runc update there).
        const long limit = 96L << 20;
        await env.Cri.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
        {
            ContainerId = app, Linux = new LinuxContainerResources { MemoryLimitInBytes = limit },
        }, deadline: CriClient.In(Long));
        var read = new ExecSyncRequest { ContainerId = app, Timeout = 60 };
        // The guest is cgroup v2: the container's own cgroup is the root of its view with a cgroup namespace, else
        // it is where the agent puts it (GuestPaths.CgroupParent).
        read.Cmd.AddRange(["/bin/sh", "-c", $"cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/hull/{app}/memory.max"]);
        var limitRead = await env.Cri.Runtime.ExecSyncAsync(read, deadline: CriClient.In(Long));
        Assert.True(limit.ToString(System.Globalization.CultureInfo.InvariantCulture) == limitRead.Stdout.ToStringUtf8().Trim(),
            $"memory.max in the guest: \"{limitRead.Stdout.ToStringUtf8().Trim()}\" ({limitRead.Stderr.ToStringUtf8().Trim()})");

        await env.StopAsync(pod);
        Assert.Equal(ContainerState.ContainerExited, (await ContainerStatusAsync(env, app)).Status.State);
        Assert.Empty(MicroVmTestSupport.QemuProcessesUsing(env.Dir));
        await env.RemoveAsync(pod);
        Assert.Empty(await env.LeftoversAsync(pod, null, null));
        Assert.Empty(MicroVmTestSupport.QemuProcessesUsing(env.Dir));
    }

    private static async Task<string> CreateAsync(PodTestEnvironment env, string pod, PodSandboxConfig podConfig, string name, string image, string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = image },
            LogPath = $"{name}/0.log",
        };
        config.Command.AddRange(command);
        var created = await env.Cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long));
        return created.ContainerId;
    }

    private static Task<ContainerStatusResponse> ContainerStatusAsync(PodTestEnvironment env, string id) =>
        env.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }).ResponseAsync;

    private static async Task<ContainerStatusResponse> WaitExitedAsync(PodTestEnvironment env, string id)
    {
        for (var until = DateTime.UtcNow + Long; DateTime.UtcNow < until; await Task.Delay(200))
        {
            var status = await ContainerStatusAsync(env, id);
            if (status.Status.State == ContainerState.ContainerExited) return status;
        }
        throw new TimeoutException($"container {id} did not exit");
    }
}
