using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Hull.Core;
using Hull.Core.Processes;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tasks;
using Hull.Runtime.Tests.Fixtures;

namespace Hull.Runtime.Tests.Tasks;

/// <summary>Real containers under conmon + runc: create, start, exit codes, logs, stop and delete.</summary>
public sealed class ContainerLifecycleTests
{
    private static CancellationToken Timeout(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    private static readonly Regex CriLine = new(
        @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) (.*)$", RegexOptions.CultureInvariant);

    [ContainerFact]
    public async Task A_container_that_exits_reports_its_exit_code_and_conmon_writes_both_streams_as_CRI_log_lines()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sh", "-c", "echo hello; echo err >&2; exit 3"]);

        var info = await tasks.CreateAsync(bundle.Request, Timeout());
        Assert.True(info.Pid > 0);
        Assert.Equal(RuntimeStatus.Created, (await tasks.StateAsync(bundle.Id, Timeout())).Status);
        await tasks.StartAsync(bundle.Id, Timeout());
        var exit = await tasks.WaitAsync(bundle.Id, Timeout());

        Assert.Equal(3, exit.ExitCode);
        Assert.False(exit.OomKilled);
        Assert.Equal("Error", exit.Reason);
        Assert.InRange(exit.FinishedAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        var lines = (await File.ReadAllLinesAsync(bundle.LogPath)).Where(l => l.Length > 0).ToList();
        Assert.Equal(2, lines.Count);
        var parsed = lines.Select(l => CriLine.Match(l)).ToList();
        Assert.All(parsed, m => Assert.True(m.Success, $"not a CRI log line: {m.Value}"));
        Assert.Contains(parsed, m => m.Groups[2].Value == "stdout" && m.Groups[3].Value == "F" && m.Groups[4].Value == "hello");
        Assert.Contains(parsed, m => m.Groups[2].Value == "stderr" && m.Groups[3].Value == "F" && m.Groups[4].Value == "err");

        var state = await tasks.StateAsync(bundle.Id, Timeout());
        Assert.Equal(RuntimeStatus.Stopped, state.Status);
        Assert.Equal(3, state.Exit?.ExitCode);

        await tasks.DeleteAsync(bundle.Id, Timeout());
        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)));
        Assert.False(File.Exists(tasks.Paths.ExitFile(bundle.Id)));
        Assert.False(File.Exists(Path.Combine(bundle.BundlePath, "ctl")));
        await Assert.ThrowsAsync<HullException>(() => tasks.StateAsync(bundle.Id, Timeout()));
        Assert.True(File.Exists(bundle.LogPath), "the log stays for the kubelet");
    }

    [ContainerFact]
    public async Task A_running_container_is_watched_by_a_detached_conmon_and_stop_escalates_to_SIGKILL_after_the_timeout()
    {
        await using var env = new TaskTestEnvironment();
        var log = Path.Combine(env.Root, "runtime.log");
        var tasks = env.NewManager(env.Options with { RuntimePath = env.LoggingRuntime(log) });
        var bundle = await env.BundleAsync(["sh", "-c", "trap '' TERM; sleep 1000"]);
        var info = await env.RunAsync(tasks, bundle);

        var state = await tasks.StateAsync(bundle.Id, Timeout());
        Assert.Equal(RuntimeStatus.Running, state.Status);
        Assert.Equal(info.Pid, state.Pid);
        Assert.True(ProcessInfo.IsAlive(info.Pid));
        Assert.Null(tasks.TryGetExit(bundle.Id));

        // conmon daemonized: not our child, in a session of its own, and the parent of the container's init.
        var conmon = ProcessInfo.TryRead(info.ConmonPid);
        Assert.NotNull(conmon);
        Assert.Equal("conmon", conmon.Command);
        Assert.NotEqual(Environment.ProcessId, conmon.ParentPid);
        Assert.NotEqual(ProcessInfo.TryRead(Environment.ProcessId)!.Session, conmon.Session);
        Assert.Equal(info.ConmonPid, ProcessInfo.TryRead(info.Pid)!.ParentPid);

        var stopwatch = Stopwatch.StartNew();
        var exit = await tasks.StopAsync(bundle.Id, TimeSpan.FromSeconds(1), Signals.SIGTERM, Timeout());
        stopwatch.Stop();

        Assert.Equal(137, exit.ExitCode);
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(10));
        Assert.False(ProcessInfo.IsAlive(info.Pid));
        // The stop signal goes through runc (its timing matters: see TaskManager.SignalAsync); SIGKILL goes by pidfd.
        var kills = (await File.ReadAllLinesAsync(log)).Where(l => l.Split(' ')[1] == "kill").ToList();
        Assert.Equal($"kill {bundle.Id} 15", Assert.Single(kills).Split(' ', 2)[1]);
        await TaskTestEnvironment.EventuallyAsync(() => !ProcessInfo.IsAlive(info.ConmonPid), TimeSpan.FromSeconds(5), "conmon to exit");
        Assert.Equal(137, (await tasks.StopAsync(bundle.Id, TimeSpan.FromSeconds(1), cancellationToken: Timeout())).ExitCode);
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task A_container_that_handles_SIGTERM_stops_before_the_timeout()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]);
        await env.RunAsync(tasks, bundle);

        var stopwatch = Stopwatch.StartNew();
        var exit = await tasks.StopAsync(bundle.Id, TimeSpan.FromSeconds(20), Signals.SIGTERM, Timeout());

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("Completed", exit.Reason);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"stop took {stopwatch.Elapsed}");
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task Run_creates_and_starts_with_one_run_of_the_runtime_and_a_container_that_exits_at_once_reports_its_exit()
    {
        await using var env = new TaskTestEnvironment();
        var log = Path.Combine(env.Root, "runtime.log");
        var tasks = env.NewManager(env.Options with { RuntimePath = env.LoggingRuntime(log) });
        var bundle = await env.BundleAsync(["sh", "-c", "echo hello; exit 4"]);

        var info = await tasks.RunAsync(bundle.Request, Timeout());
        var exit = await tasks.WaitAsync(bundle.Id, Timeout());

        Assert.True(info.Pid > 0);
        Assert.Equal(4, exit.ExitCode);
        Assert.Contains(await File.ReadAllLinesAsync(bundle.LogPath), l => l.EndsWith(" stdout F hello", StringComparison.Ordinal));
        var runs = await File.ReadAllLinesAsync(log);
        var run = Assert.Single(runs);
        Assert.Matches($@"(^| )run --detach --bundle {Regex.Escape(bundle.BundlePath)} .* {bundle.Id}$", run);
        Assert.Equal(RuntimeStatus.Stopped, (await tasks.StateAsync(bundle.Id, Timeout())).Status);
        await tasks.DeleteAsync(bundle.Id, Timeout());
        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)));
    }

    [ContainerFact]
    public async Task Delete_is_idempotent_and_a_stopped_container_is_deleted_without_a_run_of_the_runtime()
    {
        // ContainerManager deletes a task at its exit, RemoveContainer deletes it again, and neither waits for runc where
        // all its delete would do is remove the cgroups and its state (RuncStoppedContainer).
        await using var env = new TaskTestEnvironment();
        var log = Path.Combine(env.Root, "runtime.log");
        var tasks = env.NewManager(env.Options with { RuntimePath = env.LoggingRuntime(log) });
        var bundle = await env.BundleAsync(["true"]);
        await tasks.RunAsync(bundle.Request, Timeout());
        await tasks.WaitAsync(bundle.Id, Timeout());
        var cgroups = CgroupPaths.ForCgroupsPath(bundle.CgroupsPath, CgroupLayout.Detect()).Directories.ToList();
        Assert.Contains(cgroups, Directory.Exists);

        await tasks.DeleteAsync(bundle.Id, Timeout());
        await tasks.DeleteAsync(bundle.Id, Timeout());
        await tasks.DeleteAsync("never-made", Timeout());

        Assert.DoesNotContain(await File.ReadAllLinesAsync(log), l => l.Split(' ')[1] == "delete");
        Assert.DoesNotContain(cgroups, Directory.Exists);
        Assert.False(Directory.Exists(Path.Combine(env.Options.RuntimeRoot!, bundle.Id)), "runc's state is still there");
        Assert.Empty((await ProcessRunner.RunAsync(new ProcessSpec("runc", ["--root", env.Options.RuntimeRoot!, "list", "-q"]))).StdoutText.Trim());
        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)));
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<HullException>(() => tasks.StateAsync(bundle.Id, Timeout()))).Kind);
    }

    [ContainerFact]
    public async Task A_write_of_the_task_record_cut_short_by_a_kill_leaves_nothing_after_the_delete()
    {
        // A kill -9 of hulld between AtomicFile's temporary file and its rename leaves the temporary file behind.
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["true"]);
        await tasks.RunAsync(bundle.Request, Timeout());
        await tasks.WaitAsync(bundle.Id, Timeout());
        var leftover = Path.Combine(tasks.Paths.TaskDirectory(bundle.Id), ".task.json.2926.f201cbf57c3241999e4fccfdcad2d96e.tmp");
        await File.WriteAllTextAsync(leftover, "{");

        await tasks.DeleteAsync(bundle.Id, Timeout());

        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)), "the task directory is still there");
    }

    public static TheoryData<string> DeletesOnlyRuncCanDo => new()
    {
        "poststop hook", // runc runs it after removing the container
        "shared PID namespace", // processes of the container may outlive its init: runc kills them first
    };

    [ContainerTheory]
    [MemberData(nameof(DeletesOnlyRuncCanDo))]
    public async Task A_stopped_container_whose_delete_needs_more_than_removing_its_state_is_deleted_by_the_runtime(string what)
    {
        await using var env = new TaskTestEnvironment();
        var log = Path.Combine(env.Root, "runtime.log");
        var hookRan = Path.Combine(env.Root, "hook-ran");
        var tasks = env.NewManager(env.Options with { RuntimePath = env.LoggingRuntime(log) });
        var bundle = await env.BundleAsync(["true"], config =>
        {
            if (what == "poststop hook")
                config["hooks"] = new JsonObject
                {
                    ["poststop"] = new JsonArray(new JsonObject { ["path"] = "/bin/sh", ["args"] = new JsonArray("sh", "-c", $"touch '{hookRan}'") }),
                };
            else
                foreach (var ns in config["linux"]!["namespaces"]!.AsArray())
                    if ((string?)ns!["type"] == "pid") ns["path"] = $"/proc/{Environment.ProcessId}/ns/pid"; // the host's
        });
        await tasks.RunAsync(bundle.Request, Timeout());
        await tasks.WaitAsync(bundle.Id, Timeout());

        await tasks.DeleteAsync(bundle.Id, Timeout());

        Assert.Contains(await File.ReadAllLinesAsync(log), l => l.Split(' ')[1] == "delete");
        if (what == "poststop hook") Assert.True(File.Exists(hookRan), "the poststop hook did not run");
        Assert.DoesNotContain(CgroupPaths.ForCgroupsPath(bundle.CgroupsPath, CgroupLayout.Detect()).Directories, Directory.Exists);
        Assert.False(Directory.Exists(Path.Combine(env.Options.RuntimeRoot!, bundle.Id)), "runc's state is still there");
    }

    [ContainerFact]
    public async Task Run_of_a_container_with_a_terminal_that_exits_at_once_still_reports_its_exit_and_output()
    {
        // conmon learns the container's pid only after the runtime returns, and with run --detach the container may be
        // gone by then: its exit must not be lost (conmon keeps exits of pids it does not know yet on the terminal path).
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sh", "-c", "echo hello; exit 5"], config => config["process"]!.AsObject()["terminal"] = true);

        await tasks.RunAsync(bundle.Request with { Terminal = true }, Timeout());
        var exit = await tasks.WaitAsync(bundle.Id, Timeout());

        Assert.Equal(5, exit.ExitCode);
        Assert.Contains(await File.ReadAllLinesAsync(bundle.LogPath), l => l.Contains("hello", StringComparison.Ordinal));
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task Run_without_the_helper_creates_then_starts()
    {
        await using var env = new TaskTestEnvironment();
        var log = Path.Combine(env.Root, "runtime.log");
        var tasks = env.NewManager(env.Options with { RuntimePath = env.LoggingRuntime(log), RunDetachedHelper = "" });
        var bundle = await env.BundleAsync(["sleep", "1000"]);

        await tasks.RunAsync(bundle.Request, Timeout());

        Assert.Equal(RuntimeStatus.Running, (await tasks.StateAsync(bundle.Id, Timeout())).Status);
        var commands = (await File.ReadAllLinesAsync(log)).Select(l => l.Split(' ')[1]).ToList();
        Assert.Equal(["create", "start", "state"], commands);
        await tasks.StopAsync(bundle.Id, TimeSpan.FromSeconds(1), Signals.SIGKILL, Timeout());
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    [ContainerFact]
    public async Task A_run_that_fails_reports_runcs_message_and_leaves_nothing_behind()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["/no/such/program"]);

        var error = await Assert.ThrowsAsync<HullException>(() => tasks.RunAsync(bundle.Request, Timeout()));

        Assert.Contains(bundle.Id, error.Message);
        Assert.Contains("no such file", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)));
        Assert.Empty(tasks.ListIds());
        Assert.Empty(Directory.GetFileSystemEntries(tasks.Paths.AttachDirectory));
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<HullException>(() => tasks.StateAsync(bundle.Id, Timeout()))).Kind);
        await TaskTestEnvironment.EventuallyAsync(() => ConmonsOf(bundle.Id).Count == 0, TimeSpan.FromSeconds(5), "conmon to exit");
    }

    [ContainerFact]
    public async Task A_bundle_runc_cannot_start_fails_create_with_runcs_message_and_leaves_nothing_behind()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["/no/such/program"]);

        var error = await Assert.ThrowsAsync<HullException>(async () =>
        {
            await tasks.CreateAsync(bundle.Request, Timeout());
            await tasks.StartAsync(bundle.Id, Timeout()); // runc reports a missing program at create or at start
        });

        Assert.Contains(bundle.Id, error.Message);
        Assert.Contains("no such file", error.Message, StringComparison.OrdinalIgnoreCase);
        await tasks.DeleteAsync(bundle.Id, Timeout());
        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)));
        Assert.Empty(Directory.GetFileSystemEntries(tasks.Paths.AttachDirectory));
    }

    [ContainerFact]
    public async Task A_cancelled_create_kills_and_reaps_conmon_and_leaves_nothing_behind()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sleep", "1000"]);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => tasks.CreateAsync(bundle.Request, new CancellationToken(canceled: true)));

        Assert.False(Directory.Exists(tasks.Paths.TaskDirectory(bundle.Id)));
        Assert.Empty(tasks.ListIds());
        // Neither running nor a zombie (other tests run their own conmons meanwhile: look for this container's).
        await TaskTestEnvironment.EventuallyAsync(() => ConmonsOf(bundle.Id).Count == 0, TimeSpan.FromSeconds(5), "conmon to be reaped");
        await tasks.CreateAsync(bundle.Request, Timeout()); // the id is free again
        await tasks.DeleteAsync(bundle.Id, Timeout());
    }

    private static List<int> ConmonsOf(string id)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || ProcessInfo.TryRead(pid) is not { Command: "conmon" }) continue;
            try
            {
                // a zombie's cmdline is empty, so check the parent link too
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.Contains(id) || (cmdline.Length == 0 && ProcessInfo.TryRead(pid)!.ParentPid == Environment.ProcessId)) found.Add(pid);
            }
            catch (IOException)
            {
            }
        }
        return found;
    }

    [ContainerFact]
    public async Task Creating_an_existing_container_is_refused_and_deleting_an_unknown_one_is_not_an_error()
    {
        await using var env = new TaskTestEnvironment();
        var tasks = env.NewManager();
        var bundle = await env.BundleAsync(["sleep", "1000"]);
        await tasks.CreateAsync(bundle.Request, Timeout());

        var again = await Assert.ThrowsAsync<HullException>(() => tasks.CreateAsync(bundle.Request, Timeout()));
        Assert.Equal(ErrorKind.AlreadyExists, again.Kind);
        var missing = await Assert.ThrowsAsync<HullException>(() => tasks.StartAsync("nosuchcontainer", Timeout()));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);

        await tasks.DeleteAsync(bundle.Id, Timeout()); // deleting a created (never started) container
        await tasks.DeleteAsync("nosuchcontainer", Timeout());
        Assert.Empty(tasks.ListIds());
    }
}
