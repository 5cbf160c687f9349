using System.Diagnostics;
using System.Text;
using Hull.Core;
using Hull.Runtime.Tasks;
using Hull.Runtime.Tests.Fixtures;

namespace Hull.Runtime.Tests.Tasks;

/// <summary>ExecSync under a conmon exec session, against one long-running container.</summary>
public sealed class ExecSyncTests : IAsyncLifetime
{
    private readonly TaskTestEnvironment _env = new();
    private TaskManager _tasks = null!;
    private TestBundle _bundle = null!;

    private static CancellationToken Timeout(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public async Task InitializeAsync()
    {
        if (Prerequisites.MissingForContainers() is not null && !Prerequisites.Required) return;
        _tasks = _env.NewManager();
        _bundle = await _env.BundleAsync(["sleep", "1000"]);
        await _env.RunAsync(_tasks, _bundle);
    }

    public async Task DisposeAsync()
    {
        if (_tasks is not null) await _tasks.DeleteAsync(_bundle.Id, Timeout());
        await _env.DisposeAsync();
    }

    [ContainerFact]
    public async Task Exec_returns_the_commands_stdout_and_exit_code()
    {
        var result = await _tasks.ExecSyncAsync(_bundle.Id, ["echo", "hi"], TimeSpan.FromSeconds(10), Timeout());

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("hi\n", Encoding.UTF8.GetString(result.Stdout));
        Assert.Empty(result.Stderr);
        Assert.False(result.TimedOut);
    }

    [ContainerFact]
    public async Task Exec_keeps_stdout_and_stderr_apart_and_reports_a_failing_exit_code()
    {
        var result = await _tasks.ExecSyncAsync(_bundle.Id, ["sh", "-c", "echo out; printf partial; echo err >&2; exit 5"],
            TimeSpan.Zero, Timeout());

        Assert.Equal(5, result.ExitCode);
        Assert.Equal("out\npartial", Encoding.UTF8.GetString(result.Stdout));
        Assert.Equal("err\n", Encoding.UTF8.GetString(result.Stderr));
    }

    [ContainerFact]
    public async Task Exec_that_outlives_its_timeout_is_killed_and_returns_at_the_deadline()
    {
        var stopwatch = Stopwatch.StartNew();
        var result = await _tasks.ExecSyncAsync(_bundle.Id, ["sleep", "10"], TimeSpan.FromSeconds(1), Timeout());
        stopwatch.Stop();

        Assert.True(result.TimedOut);
        Assert.Equal(-1, result.ExitCode);
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5));
        var ps = await _tasks.ExecSyncAsync(_bundle.Id, ["ps"], TimeSpan.FromSeconds(10), Timeout());
        var processes = Encoding.UTF8.GetString(ps.Stdout).Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.Contains(processes, l => l.EndsWith("sleep 1000", StringComparison.Ordinal));
        Assert.DoesNotContain(processes, l => l.EndsWith("sleep 10", StringComparison.Ordinal)); // the timed-out command was killed
    }

    [ContainerFact]
    public async Task Exec_returns_when_the_command_exits_even_if_a_background_child_keeps_stdout_open()
    {
        var stopwatch = Stopwatch.StartNew();
        var result = await _tasks.ExecSyncAsync(_bundle.Id, ["sh", "-c", "sleep 30 & echo done"], TimeSpan.FromSeconds(20), Timeout());
        stopwatch.Stop();

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("done\n", Encoding.UTF8.GetString(result.Stdout));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"exec took {stopwatch.Elapsed}");
    }

    [ContainerFact]
    public async Task Exec_of_a_missing_program_is_an_error_naming_the_container()
    {
        var error = await Assert.ThrowsAsync<HullException>(() =>
            _tasks.ExecSyncAsync(_bundle.Id, ["/no/such/program"], TimeSpan.FromSeconds(10), Timeout()));

        Assert.Contains(_bundle.Id, error.Message);
        Assert.Contains("no such file", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(Directory.GetFileSystemEntries(_tasks.Paths.ExecDirectory));
    }

    [ContainerFact]
    public async Task Exec_runs_with_the_containers_process_settings()
    {
        var result = await _tasks.ExecSyncAsync(_bundle.Id, ["sh", "-c", "id -u; echo $PATH"],
            TimeSpan.FromSeconds(10), Timeout());

        var lines = Encoding.UTF8.GetString(result.Stdout).Split('\n');
        Assert.Equal("0", lines[0]);
        Assert.Contains("/bin", lines[1]);
    }
}
