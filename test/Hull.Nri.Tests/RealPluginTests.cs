using System.Diagnostics;
using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Spec;
using Hull.Tests.Support;

namespace Hull.Nri.Tests;

/// <summary>Hull.Nri against the real upstream plugins of containerd/nri v0.12.2.</summary>
public sealed class RealPluginTests
{
    /// <summary>SIGSTOP, then wait until the kernel reports every thread of the plugin stopped.</summary>
    private static async Task StopAsync(int pid)
    {
        Assert.True(Signals.TrySend(pid, Signals.SIGSTOP));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Directory.EnumerateDirectories($"/proc/{pid}/task").Any(t => File.ReadAllText($"{t}/stat").Split(") ")[1][0] != 'T'))
        {
            Assert.True(DateTime.UtcNow < deadline, $"plugin {pid} did not stop");
            await Task.Delay(5);
        }
    }

    [PluginFact]
    public async Task Logger_launched_from_plugin_path_sees_synchronize_and_every_event_in_lifecycle_order()
    {
        await using var env = new NriTestEnvironment();
        env.Runtime.State = new NriSnapshot([NriTestEnvironment.Pod("old-pod")], [NriTestEnvironment.Container("old-ctr") with { PodSandboxId = "old-pod" }]);
        env.Install("10-logger", "logger", "-log-file", env.LogFile("logger"));
        var host = await env.StartAsync();
        var plugin = Assert.Single(host.ListPlugins());
        Assert.Equal(("logger", "10", true), (plugin.Name, plugin.Index, plugin.PreInstalled));
        Assert.Contains("CreateContainer", plugin.Events);

        await NriTestEnvironment.RunEveryEventAsync(host);

        string[] expected =
        [
            "Synchronize", "RunPodSandbox", "CreateContainer", "PostCreateContainer", "StartContainer", "PostStartContainer",
            "UpdateContainer", "PostUpdateContainer", "UpdatePodSandbox", "PostUpdatePodSandbox", "StopContainer", "RemoveContainer",
            "StopPodSandbox", "RemovePodSandbox",
        ];
        Assert.Equal(expected, await UpstreamNriPlugins.LoggedEventsAsync(env.LogFile("logger"), expected.Length));
        var log = File.ReadAllText(env.LogFile("logger"));
        Assert.Contains("old-ctr", log);
        Assert.Contains("from runtime hull", log);
    }

    [PluginFact]
    public async Task An_external_plugin_connects_to_the_socket_and_its_adjustment_comes_back()
    {
        await using var env = new NriTestEnvironment();
        var host = await env.StartAsync();
        env.StartExternal("logger", "-socket-path", env.SocketPath, "-idx", "30", "-add-env", "FROM_LOGGER", "-log-file", env.LogFile("ext"));
        await env.WaitForPluginsAsync(1);
        Assert.Equal(("logger", "30", false), (host.ListPlugins()[0].Name, host.ListPlugins()[0].Index, host.ListPlugins()[0].PreInstalled));

        var result = await host.CreateContainerAsync(NriTestEnvironment.Pod(), NriTestEnvironment.Container());
        var env1 = Assert.Single(result.Adjustment.Env);
        Assert.Equal("FROM_LOGGER", env1.Key);
        Assert.StartsWith("logger-pid-", env1.Value);
    }

    [PluginFact]
    public async Task Device_injector_and_ulimit_adjuster_adjustments_come_back_merged_and_apply_to_the_spec()
    {
        await using var env = new NriTestEnvironment();
        env.Install("10-device-injector", "device-injector");
        env.Install("20-ulimit-adjuster", "ulimit-adjuster");
        var host = await env.StartAsync();
        Assert.Equal(["device-injector", "ulimit-adjuster"], host.ListPlugins().Select(p => p.Name));

        var pod = NriTestEnvironment.Pod(annotations: new Dictionary<string, string>
        {
            ["devices.noderesource.dev/container.ctr"] = "- path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 0666\n",
            ["ulimits.noderesource.dev/container.ctr"] = "- type: RLIMIT_NOFILE\n  hard: 4096\n  soft: 1024\n- type: nproc\n  hard: 512\n  soft: 256\n",
        });
        var ctr = NriTestEnvironment.Container();
        var result = await host.CreateContainerAsync(pod, ctr);

        var device = Assert.Single(result.Adjustment.Devices);
        Assert.Equal(("/dev/nri-null", "c", 1L, 3L, 0x1b6u), (device.Path, device.Type, device.Major, device.Minor, device.FileMode ?? 0));
        Assert.Equal([("RLIMIT_NOFILE", 4096UL, 1024UL), ("RLIMIT_NPROC", 512UL, 256UL)], result.Adjustment.Rlimits.Select(r => (r.Type, r.Hard, r.Soft)));

        var spec = SpecAdjuster.Apply(ctr.Spec!, result.Adjustment, ctr.Name, new HostInfo());
        Assert.Contains(spec.Linux!.Devices!, d => d.Path == "/dev/nri-null" && d.Major == 1 && d.Minor == 3);
        Assert.Contains(spec.Linux.Resources!.Devices!, r => r.Allow && r.Type == "c" && r.Major == 1 && r.Minor == 3 && r.Access == "rw");
        Assert.Contains(spec.Process!.Rlimits!, r => r.Type == "RLIMIT_NOFILE" && r.Hard == 4096 && r.Soft == 1024);
    }

    [PluginFact]
    public async Task Two_plugins_setting_one_field_fail_create_container_naming_both()
    {
        await using var env = new NriTestEnvironment();
        env.Install("10-logger", "logger", "-add-env", "SHARED");
        env.Install("20-other", "logger", "-add-env", "SHARED");
        var host = await env.StartAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => host.CreateContainerAsync(NriTestEnvironment.Pod(), NriTestEnvironment.Container()));
        Assert.Equal("plugins \"20-other\" and \"10-logger\" both tried to set Env SHARED", e.Message);
    }

    [PluginFact]
    public async Task A_missing_required_plugin_fails_run_pod_sandbox_naming_it()
    {
        await using var env = new NriTestEnvironment();
        env.Install("10-logger", "logger");
        var host = await env.StartAsync(o => o with { RequiredPlugins = ["logger", "device-injector"] });
        var e = await Assert.ThrowsAsync<HullException>(() => host.RunPodSandboxAsync(NriTestEnvironment.Pod()));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("required NRI plugin \"device-injector\" is not connected", e.Message);
    }

    [PluginFact]
    public async Task A_plugin_killed_mid_call_does_not_hang_the_event_and_is_dropped()
    {
        await using var env = new NriTestEnvironment();
        env.Install("10-logger", "logger");
        var host = await env.StartAsync(o => o with { RequestTimeout = TimeSpan.FromSeconds(30) });
        int pid = host.ListPlugins()[0].Pid;
        // The wrapper script execs the plugin, so the pid is the plugin's. Stop it, call, then kill it mid-call.
        await StopAsync(pid);
        var watch = Stopwatch.StartNew();
        var call = host.RunPodSandboxAsync(NriTestEnvironment.Pod());
        await Task.Delay(300);
        Assert.False(call.IsCompleted);
        Signals.TrySend(pid, Signals.SIGKILL);
        await call.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Empty(host.ListPlugins());
        await host.RunPodSandboxAsync(NriTestEnvironment.Pod());
    }

    [PluginFact]
    public async Task A_required_plugin_that_times_out_fails_the_call_naming_it()
    {
        await using var env = new NriTestEnvironment();
        env.Install("10-logger", "logger");
        var host = await env.StartAsync(o => o with { RequiredPlugins = ["10-logger"], PluginRequestTimeouts = new Dictionary<string, TimeSpan> { ["logger"] = TimeSpan.FromMilliseconds(300) } });
        int pid = host.ListPlugins()[0].Pid;
        await StopAsync(pid);
        try
        {
            var e = await Assert.ThrowsAsync<HullException>(() => host.RunPodSandboxAsync(NriTestEnvironment.Pod()).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(ErrorKind.DeadlineExceeded, e.Kind);
            Assert.Contains("required NRI plugin \"10-logger\" did not answer RunPodSandbox within 0.3s", e.Message);
            Assert.Contains("RunPodSandbox", host.ListPlugins()[0].LastError);
        }
        finally
        {
            Signals.TrySend(pid, Signals.SIGCONT);
        }
    }

    [PluginFact]
    public async Task A_plugin_that_does_not_register_in_time_is_not_connected()
    {
        await using var env = new NriTestEnvironment();
        var script = Path.Combine(env.PluginPath, "10-silent");
        File.WriteAllText(script, "#!/bin/sh\nexec /bin/sleep 30\n");
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        var watch = Stopwatch.StartNew();
        var host = await env.StartAsync(o => o with { RegistrationTimeout = TimeSpan.FromMilliseconds(500) });
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Empty(host.ListPlugins());
        Assert.Contains(env.Logger.Lines, l => l.Contains("10-silent") && l.Contains("did not register"));
    }
}
