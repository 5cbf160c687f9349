using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tasks;
using Hull.Runtime.Tests.Fixtures;

namespace Hull.Runtime.Tests.Tasks;

/// <summary>What conmon does while hulld is away or busy: log rotation, restart recovery, OOM kills, cgroup stats.</summary>
public sealed class ContainerMonitoringTests
{
    private static CancellationToken Timeout(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [ContainerFact]
    public async Task Reopening_the_log_after_the_kubelet_renamed_it_sends_new_lines_to_a_new_file()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done"]);
        await env.RunAsync(tasks, bundle);
        await TaskTestEnvironment.EventuallyAsync(() => LineCount(bundle.LogPath) >= 3, TimeSpan.FromSeconds(10), "first log lines");

        var rotated = bundle.LogPath + ".20250101-000000";
        File.Move(bundle.LogPath, rotated);
        await tasks.ReopenLogAsync(bundle.Id, Timeout());

        Assert.True(File.Exists(bundle.LogPath));
        await TaskTestEnvironment.EventuallyAsync(() => LineCount(bundle.LogPath) >= 3, TimeSpan.FromSeconds(10), "lines in the new log");
        int rotatedLines = LineCount(rotated);
        await Task.Delay(300);
        Assert.Equal(rotatedLines, LineCount(rotated)); // conmon no longer writes to the renamed file
        var newLines = CriLog.Parse(await File.ReadAllTextAsync(bundle.LogPath));
        Assert.All(newLines, l => Assert.Equal("stdout", l.Stream));
        var lastOld = CriLog.Parse(await File.ReadAllTextAsync(rotated)).Last().Content;
        Assert.Equal(int.Parse(lastOld["line".Length..]) + 1, int.Parse(newLines[0].Content["line".Length..])); // nothing lost in between

        await tasks.StopAsync(bundle.Id, TimeSpan.Zero, cancellationToken: Timeout());
        var stopped = await Assert.ThrowsAsync<HullException>(() => tasks.ReopenLogAsync(bundle.Id, Timeout(5)));
        Assert.Equal(ErrorKind.FailedPrecondition, stopped.Kind);
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task A_restarted_manager_finds_the_running_container_and_later_the_exit_code_recorded_while_it_was_down()
    {
        await using var env = new TaskTestEnvironment();
        var trigger = "stop-" + Guid.NewGuid().ToString("n");
        var bundle = await env.BundleAsync(["sh", "-c", $"while [ ! -e /tmp/{trigger} ]; do sleep 0.05; done; exit 7"]);
        TaskInfo info;
        using (var first = env.NewManager()) info = await env.RunAsync(first, bundle);

        // hulld restarts: a new manager knows nothing but the state directory.
        using (var second = env.NewManager())
        {
            Assert.Equal([bundle.Id], second.ListIds());
            var running = await second.RecoverAsync(bundle.Id, Timeout());
            Assert.Equal(RuntimeStatus.Running, running.Status);
            Assert.Equal(info.Pid, running.Pid);
            Assert.Equal(info.ConmonPid, running.ConmonPid);
            Assert.True(running.ConmonAlive);
            Assert.Null(running.Exit);
        }

        // hulld is down; the container exits; conmon records the exit code.
        File.WriteAllText(Path.Combine(env.Rootfs, "tmp", trigger), "");
        var exitFile = new TaskPaths(env.Options.StateDirectory).ExitFile(bundle.Id);
        await TaskTestEnvironment.EventuallyAsync(() => File.Exists(exitFile), TimeSpan.FromSeconds(10), "conmon's exit file");
        var finished = File.GetLastWriteTimeUtc(exitFile);

        using var third = env.NewManager();
        var exited = await third.RecoverAsync(bundle.Id, Timeout());
        Assert.Equal(RuntimeStatus.Stopped, exited.Status);
        Assert.Equal(7, exited.Exit?.ExitCode);
        Assert.Equal(finished, exited.Exit!.FinishedAt.UtcDateTime);
        Assert.False(exited.Exit.OomKilled);
        Assert.Equal(7, (await third.WaitAsync(bundle.Id, Timeout())).ExitCode);
        await third.DeleteAsync(bundle.Id, Timeout());
        Assert.Empty(third.ListIds());
    }

    [ContainerFact]
    public async Task A_container_whose_conmon_was_killed_is_reported_exited_with_255()
    {
        await using var env = new TaskTestEnvironment();
        var bundle = await env.BundleAsync(["sleep", "1000"]);
        TaskInfo info;
        using (var first = env.NewManager()) info = await env.RunAsync(first, bundle);
        Signals.TrySend(info.ConmonPid, Signals.SIGKILL);
        Signals.TrySend(info.Pid, Signals.SIGKILL);
        await TaskTestEnvironment.EventuallyAsync(() => !ProcessInfo.IsAlive(info.Pid) && !ProcessInfo.IsAlive(info.ConmonPid),
            TimeSpan.FromSeconds(10), "container and conmon to die");

        using var second = env.NewManager();
        var recovery = await second.RecoverAsync(bundle.Id, Timeout());

        Assert.Equal(RuntimeStatus.Stopped, recovery.Status);
        Assert.False(recovery.ConmonAlive);
        Assert.Equal(255, recovery.Exit?.ExitCode);
        Assert.NotNull(recovery.Exit!.Message);
        await second.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task A_container_killed_by_the_OOM_killer_is_reported_OOMKilled()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        // busybox tail keeps the current line in memory, and /dev/zero has no newline.
        var bundle = await env.BundleAsync(["sh", "-c", "head -c 64m /dev/zero | tail"], TaskTestEnvironment.MemoryLimit(8 << 20));
        await env.RunAsync(tasks, bundle);

        var exit = await tasks.WaitAsync(bundle.Id, Timeout());

        Assert.Equal(137, exit.ExitCode);
        Assert.True(exit.OomKilled);
        Assert.Equal("OOMKilled", exit.Reason);
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task Stats_of_a_busy_container_show_cpu_and_memory_and_an_update_changes_its_memory_limit()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sh", "-c", "while true; do :; done"], TaskTestEnvironment.MemoryLimit(256 << 20));
        await env.RunAsync(tasks, bundle);
        var cgroups = tasks.GetCgroupPaths(bundle.Id);
        Assert.Contains(cgroups.Directories, d => d.EndsWith(bundle.CgroupsPath, StringComparison.Ordinal));

        await TaskTestEnvironment.EventuallyAsync(() => tasks.GetStats(bundle.Id).CpuUsageNanoseconds > 50_000_000, TimeSpan.FromSeconds(10), "CPU time");
        var stats = tasks.GetStats(bundle.Id);

        Assert.True(stats.MemoryUsageBytes > 0);
        Assert.InRange(stats.MemoryWorkingSetBytes, 1UL, stats.MemoryUsageBytes);
        Assert.Equal(256UL << 20, stats.MemoryLimitBytes);
        Assert.Equal(0UL, stats.OomKills);

        await tasks.UpdateResourcesAsync(bundle.Id, new TaskResources { MemoryLimitBytes = 64 << 20, MemorySwapLimitBytes = 64 << 20 }, Timeout());
        Assert.Equal(64UL << 20, tasks.GetStats(bundle.Id).MemoryLimitBytes);

        await tasks.StopAsync(bundle.Id, TimeSpan.Zero, cancellationToken: Timeout());
        await tasks.DeleteAsync(bundle.Id, Timeout());
        Assert.DoesNotContain(cgroups.Directories, Directory.Exists); // runc delete removed the cgroup
        Assert.Throws<HullException>(() => CgroupStatsReader.Read(cgroups));
    }

    private static int LineCount(string path)
    {
        try
        {
            return File.ReadAllLines(path).Count(l => l.Length > 0);
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }
}
