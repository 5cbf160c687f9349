using System.Net.Sockets;
using System.Text;
using Hull.Core;
using Hull.E2E.Fixtures;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Controller;
using Hull.Sandbox.MicroVm;

namespace Hull.E2E.MicroVm;

/// <summary>
/// The microvm sandboxer end to end (TCG on these machines): pods boot a VM, containers run in it under runc, the pod
/// IP is the guest's, and nothing is left behind. Each test boots one VM (~10–20 s under TCG); the class takes about
/// a minute and a half.
/// </summary>
public sealed class MicroVmSandboxTests
{
    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd, "/usr/lib/cni/bridge", "tc", "nsenter")]
    public async Task A_pod_runs_containers_on_the_guest_kernel_answers_on_its_IP_and_leaves_nothing()
    {
        await using var env = await MicroVmPodEnvironment.StartAsync();
        var spec = env.PodSpec("mvpod");
        var pod = await env.RunPodAsync(spec);
        Assert.Equal(SandboxState.Ready, pod.State);
        var tasks = env.Controller.Tasks(spec.Id);

        // A container prints the kernel it runs on: the guest's, not the host's.
        var (uname, unameLog) = await env.CreateContainerAsync(spec, pod, "uname", ["uname", "-r"]);
        await tasks.StartAsync(uname.Id);
        var exit = await tasks.WaitAsync(uname.Id).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, exit.ExitCode);
        var log = await MicroVmPodEnvironment.WaitForLogAsync(unameLog, MicroVmTestSupport.GuestKernelRelease);
        Assert.DoesNotContain((await File.ReadAllTextAsync("/proc/sys/kernel/osrelease")).Trim(), log);
        Assert.Matches(@"^\S+ stdout F " + System.Text.RegularExpressions.Regex.Escape(MicroVmTestSupport.GuestKernelRelease) + "\n$", log);

        // Exit codes, stderr and a hostPath volume come back.
        var volume = Directory.CreateTempSubdirectory("hmv-vol-").FullName;
        await File.WriteAllTextAsync(Path.Combine(volume, "greeting"), "from the host volume\n");
        var (failing, failingLog) = await env.CreateContainerAsync(spec, pod, "failing",
            ["sh", "-c", "cat /data/greeting; echo oops >&2; exit 3"],
            [new ContainerMount { ContainerPath = "/data", HostPath = volume, Readonly = true }]);
        await tasks.StartAsync(failing.Id);
        Assert.Equal(3, (await tasks.WaitAsync(failing.Id).WaitAsync(TimeSpan.FromSeconds(60))).ExitCode);
        var failingText = await MicroVmPodEnvironment.WaitForLogAsync(failingLog, "oops");
        Assert.Contains("stdout F from the host volume", failingText);
        Assert.Contains("stderr F oops", failingText);

        // A server in the pod answers on the pod IP from the host, and exec runs in its container.
        var (server, _) = await env.CreateContainerAsync(spec, pod, "server", ["httpd", "-f", "-p", "8080", "-h", "/www"]);
        await tasks.StartAsync(server.Id);
        var ip = MicroVmPodEnvironment.Ipv4Of(pod);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string? page = null;
        for (var until = DateTime.UtcNow.AddSeconds(60); page is null && DateTime.UtcNow < until;)
        {
            try { page = await http.GetStringAsync($"http://{ip}:8080/index.html"); }
            catch (HttpRequestException) { await Task.Delay(500); }
            catch (TaskCanceledException) { }
        }
        Assert.Equal("hello from the microVM\n", page);

        var hostname = await tasks.ExecSyncAsync(server.Id, ["hostname"], TimeSpan.FromSeconds(30));
        Assert.Equal(0, hostname.ExitCode);
        Assert.Equal("mvpod\n", Encoding.UTF8.GetString(hostname.Stdout));
        var address = await tasks.ExecSyncAsync(server.Id, ["ip", "-4", "addr", "show", "eth0"], TimeSpan.FromSeconds(30));
        Assert.Contains(ip.ToString(), Encoding.UTF8.GetString(address.Stdout));
        var code = await tasks.ExecSyncAsync(server.Id, ["sh", "-c", "echo to-stderr >&2; exit 42"], TimeSpan.FromSeconds(30));
        Assert.Equal(42, code.ExitCode);
        Assert.Equal("to-stderr\n", Encoding.UTF8.GetString(code.Stderr));

        // Port-forward reaches the server through the agent.
        await using (var forwarded = await env.Controller.ConnectAsync(spec.Id, 8080, CancellationToken.None))
        {
            await forwarded.Stream.WriteAsync("GET /index.html HTTP/1.0\r\n\r\n"u8.ToArray());
            await forwarded.CloseSendAsync();
            var response = new MemoryStream();
            await forwarded.Stream.CopyToAsync(response);
            Assert.Contains("hello from the microVM", Encoding.UTF8.GetString(response.ToArray()));
        }

        var metrics = await env.Controller.MetricsAsync(spec.Id, CancellationToken.None);
        Assert.True(metrics.MemoryWorkingSetBytes > 16UL << 20, $"qemu RSS {metrics.MemoryWorkingSetBytes}");

        // Stop, then remove (the kubelet's order): containers stop with the VM, nothing stays.
        await env.Controller.StopAsync(spec.Id, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.NotNull(tasks.TryGetExit(server.Id));
        Assert.Empty(MicroVmTestSupport.QemuProcessesUsing(env.Dir.Path));
        foreach (var id in new[] { uname.Id, failing.Id, server.Id }) await tasks.DeleteAsync(id);
        await env.Controller.ShutdownAsync(spec.Id, CancellationToken.None);
        Assert.Empty(env.Leftovers(spec.Id));
        Directory.Delete(volume, recursive: true);
    }

    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Initrd, "/usr/lib/cni/bridge", "tc", "nsenter")]
    public async Task A_corrupt_kernel_fails_the_pod_with_a_clear_message_and_leaves_nothing()
    {
        string corrupt = Path.Combine(Path.GetTempPath(), $"hmv-corrupt-vmlinux-{Guid.NewGuid():N}");
        await File.WriteAllBytesAsync(corrupt, Encoding.ASCII.GetBytes(new string('x', 8192)));
        try
        {
            await using var env = await MicroVmPodEnvironment.StartAsync(o => o with { KernelPath = corrupt, Accel = MicroVmAccel.Tcg });
            var spec = env.PodSpec("broken");
            var e = await Assert.ThrowsAsync<HullException>(() => env.RunPodAsync(spec));
            Assert.Contains("qemu failed to start", e.Message);
            Assert.Contains(spec.Id[..12], e.Message);
            Assert.Empty(env.Leftovers(spec.Id));
        }
        finally
        {
            File.Delete(corrupt);
        }
    }

    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd, "/usr/lib/cni/bridge", "tc", "nsenter")]
    public async Task A_guest_that_does_not_answer_in_time_fails_the_pod_with_its_console_and_leaves_nothing()
    {
        await using var env = await MicroVmPodEnvironment.StartAsync(o => o with { BootTimeout = TimeSpan.FromSeconds(1), Accel = MicroVmAccel.Tcg });
        var spec = env.PodSpec("slow");
        var e = await Assert.ThrowsAsync<HullException>(() => env.RunPodAsync(spec));
        Assert.Equal(ErrorKind.DeadlineExceeded, e.Kind);
        Assert.Contains("did not answer within 1 s (tcg); console:", e.Message);
        Assert.Empty(env.Leftovers(spec.Id));
    }

    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd, "/usr/lib/cni/bridge", "tc", "nsenter")]
    public async Task The_VM_survives_a_restart_and_a_VM_that_dies_ends_its_pod_and_containers()
    {
        await using var env = await MicroVmPodEnvironment.StartAsync();
        var spec = env.PodSpec("survivor");
        var pod = await env.RunPodAsync(spec);
        var (sleeper, log) = await env.CreateContainerAsync(spec, pod, "sleeper",
            ["sh", "-c", "echo before; read line; echo \"after $line\"; sleep 600"]);
        await env.Controller.Tasks(spec.Id).StartAsync(sleeper.Id);
        await MicroVmPodEnvironment.WaitForLogAsync(log, "before");

        // "hulld restarts": a new controller takes the running VM back from what was persisted.
        var controller = await env.RestartControllerAsync();
        var recovered = await controller.RecoverAsync(spec, pod with { State = SandboxState.Ready }, exitedAt: null, CancellationToken.None);
        Assert.Equal(SandboxState.Ready, recovered.State);
        var tasks = controller.Tasks(spec.Id);
        var state = await tasks.RecoverAsync(sleeper.Id);
        Assert.Equal(RuntimeStatus.Running, state.Status);
        var exec = await tasks.ExecSyncAsync(sleeper.Id, ["echo", "still here"], TimeSpan.FromSeconds(30));
        Assert.Equal("still here\n", Encoding.UTF8.GetString(exec.Stdout));

        // Interactive exec with stdin through the new connection; the container's log keeps growing.
        await using (var session = await ((IInteractiveTaskService)tasks).StartExecAsync(sleeper.Id,
            new InteractiveExecRequest(["sh", "-c", "read x; echo \"got $x\""], Tty: false, Stdin: true, Stdout: true, Stderr: true)))
        {
            await session.Stdin!.WriteAsync("ping\n"u8.ToArray());
            session.CloseStdin();
            var reader = new StreamReader(session.Stdout!);
            Assert.Equal("got ping", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, await session.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // With a terminal: the guest's pty, and the exit code.
        await using (var tty = await ((IInteractiveTaskService)tasks).StartExecAsync(sleeper.Id,
            new InteractiveExecRequest(["sh", "-c", "tty; exit 4"], Tty: true, Stdin: false, Stdout: true, Stderr: false)))
        {
            Assert.Null(tty.Stderr);
            var output = await new StreamReader(tty.Stdout!).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("/dev/pts/", output);
            Assert.Equal(4, await tty.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // Attach: stdin in, output out (tagged with its pipe, as conmon's attach socket does), stdin_once closes stdin.
        var (echo, _) = await env.CreateContainerAsync(spec, pod, "echo", ["sh", "-c", "while read l; do echo \"echo:$l\"; done; echo bye >&2"],
            stdinOnce: true);
        await tasks.StartAsync(echo.Id);
        using (var attached = await ((IInteractiveTaskService)tasks).AttachAsync(echo.Id))
        {
            await attached.SendStdinAsync("hi\n"u8.ToArray(), CancellationToken.None);
            var packet = new byte[AttachConnection.MaxPacket];
            var received = new StringBuilder();
            while (!received.ToString().Contains("bye"))
            {
                int n = await attached.ReceiveAsync(packet, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(n > 0, $"attach ended early; got {received}");
                received.Append(packet[0] == AttachConnection.StdoutPipe ? "out:" : "err:").Append(Encoding.UTF8.GetString(packet, 1, n - 1));
                if (received.ToString().Contains("echo:hi")) attached.CloseStdin();
            }
            Assert.Equal("out:echo:hi\nerr:bye\n", received.ToString());
        }
        Assert.Equal(0, (await tasks.WaitAsync(echo.Id).WaitAsync(TimeSpan.FromSeconds(30))).ExitCode);
        await tasks.DeleteAsync(echo.Id);

        // qemu dies: the pod exits, and so does its container, with the console in the reason.
        var qemu = MicroVmTestSupport.QemuProcessesUsing(env.Dir.Path).Single();
        System.Diagnostics.Process.GetProcessById(qemu).Kill();
        var podExit = await controller.WaitAsync(spec.Id, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(255, podExit.ExitCode);
        var containerExit = await tasks.WaitAsync(sleeper.Id).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(255, containerExit.ExitCode);
        Assert.Contains("exited", containerExit.Message);
        var status = await controller.StatusAsync(spec.Id, false, CancellationToken.None);
        Assert.Equal(SandboxState.NotReady, status.Instance.State);

        await tasks.DeleteAsync(sleeper.Id);
        await controller.ShutdownAsync(spec.Id, CancellationToken.None);
        Assert.Empty(env.Leftovers(spec.Id));
    }
}
