using System.Diagnostics;
using Hull.Linux.Processes;
using Hull.Runtime.Tasks;
using Hull.Runtime.Tests.Fixtures;

namespace Hull.Runtime.Tests.Tasks;

/// <summary>Issue 13: the start-up sweep of tasks no pod or container row owns (left by a kill -9 of hulld).</summary>
public sealed class TaskSweepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hull-sweep-").FullName;
    private readonly List<Process> _processes = [];

    [Fact]
    public async Task Unowned_task_directories_lose_their_conmon_runtime_state_and_files_and_owned_ones_are_kept()
    {
        var state = Path.Combine(_dir, "state");
        var calls = Path.Combine(_dir, "runtime-calls");
        // A stand-in OCI runtime that records its arguments: the sweep must ask it to delete exactly the unowned tasks.
        var runtime = Path.Combine(_dir, "fake-runc");
        await File.WriteAllTextAsync(runtime, $"#!/bin/sh\necho \"$@\" >> {calls}\n");
        File.SetUnixFileMode(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var tasks = new TaskManager(new TaskOptions { StateDirectory = state, RuntimePath = runtime });

        var orphanConmon = StartFakeConmon();
        var ownedConmon = StartFakeConmon();
        WriteTaskDir(tasks.Paths, "orphan", orphanConmon.Id);
        WriteTaskDir(tasks.Paths, "owned", ownedConmon.Id);
        await File.WriteAllTextAsync(tasks.Paths.ExitFile("orphan"), "0");
        // Runtime state with no task directory at all (killed between runc create and anything else of ours).
        Directory.CreateDirectory(Path.Combine(state, "runc", "runtime-only"));

        var swept = await tasks.SweepUnownedAsync(new HashSet<string> { "owned" });

        Assert.Equal(["orphan", "runtime-only"], swept);
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            await orphanConmon.WaitForExitAsync(wait.Token);
        Assert.False(ownedConmon.HasExited, "the conmon of an owned task was killed");
        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory("orphan")), "the unowned task directory is still there");
        Assert.False(File.Exists(tasks.Paths.ExitFile("orphan")));
        Assert.True(File.Exists(tasks.Paths.ConmonPidFile("owned")), "the owned task directory was touched");
        var deleted = (await File.ReadAllLinesAsync(calls)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal([$"--root={Path.Combine(state, "runc")} delete --force orphan", $"--root={Path.Combine(state, "runc")} delete --force runtime-only"], deleted);
    }

    [ContainerFact]
    public async Task A_real_container_no_row_owns_is_killed_and_deleted_by_a_restarted_manager()
    {
        await using var env = new TaskTestEnvironment();
        var bundle = await env.BundleAsync(["sleep", "600"]);
        var first = env.NewManager();
        var info = await env.RunAsync(first, bundle);
        var record = Path.Combine(env.Options.StateDirectory, "containers", bundle.Id, "task.json");
        Assert.True(File.Exists(record));

        // As after a kill -9 of hulld before the container's row was written: a new manager, and no row owns the task.
        var restarted = env.NewManager();
        var swept = await restarted.SweepUnownedAsync(new HashSet<string>());

        Assert.Equal([bundle.Id], swept);
        await TaskTestEnvironment.EventuallyAsync(() => !ProcessInfo.IsAlive(info.Pid), TimeSpan.FromSeconds(10), "the container's init to die");
        Assert.False(Directory.Exists(Path.GetDirectoryName(record)), "the task directory is still there");
        Assert.Empty(restarted.ListIds());
    }

    private Process StartFakeConmon()
    {
        // A copy of sleep named conmon: /proc/<pid>/stat then says "conmon", as for the real monitor.
        var conmon = Path.Combine(_dir, "conmon");
        if (!File.Exists(conmon)) File.Copy("/bin/sleep", conmon);
        var process = Process.Start(new ProcessStartInfo(conmon, "600"))!;
        _processes.Add(process);
        return process;
    }

    private static void WriteTaskDir(TaskPaths paths, string id, int conmonPid)
    {
        Directory.CreateDirectory(paths.TaskDirectory(id));
        File.WriteAllText(paths.ConmonPidFile(id), conmonPid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited) process.Kill();
            process.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }
}
