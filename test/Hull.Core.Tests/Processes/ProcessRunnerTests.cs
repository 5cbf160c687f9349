using System.Diagnostics;
using Hull.Core;
using Hull.Core.Processes;

namespace Hull.Core.Tests.Processes;

public sealed class ProcessRunnerTests
{
    [Fact]
    public async Task Output_exit_code_and_stderr_are_captured()
    {
        var outcome = await ProcessRunner.RunAsync(new ProcessSpec("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"]));
        Assert.Equal(3, outcome.ExitCode);
        Assert.Equal("out\n", outcome.StdoutText);
        Assert.Equal("err", outcome.Stderr);
        Assert.False(outcome.OutputTruncated);
    }

    [Fact]
    public async Task A_background_child_holding_stdout_does_not_hold_the_call_and_output_is_kept()
    {
        var watch = Stopwatch.StartNew();
        var outcome = await ProcessRunner.RunAsync(new ProcessSpec("/bin/sh", ["-c", "sleep 30 & echo done"]));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
        Assert.Equal("done\n", outcome.StdoutText);
        Assert.Equal(0, outcome.ExitCode);
    }

    [Fact]
    public async Task A_child_past_its_timeout_is_killed_with_DeadlineExceeded()
    {
        var watch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HullException>(() =>
            ProcessRunner.RunAsync(new ProcessSpec("/bin/sleep", ["60"]) { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.Equal(ErrorKind.DeadlineExceeded, e.Kind);
        Assert.Contains("/bin/sleep", e.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_child_that_never_reads_a_large_stdin_still_meets_its_timeout()
    {
        var input = new byte[1 << 20];
        var e = await Assert.ThrowsAsync<HullException>(() =>
            ProcessRunner.RunAsync(new ProcessSpec("/bin/sleep", ["60"]) { Stdin = input, Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.Equal(ErrorKind.DeadlineExceeded, e.Kind);
    }

    [Fact]
    public async Task Output_beyond_the_cap_is_dropped_and_flagged()
    {
        var outcome = await ProcessRunner.RunAsync(new ProcessSpec("/bin/sh", ["-c", "head -c 100000 /dev/zero"]) { MaxOutputBytes = 1000 });
        Assert.Equal(1000, outcome.Stdout.Length);
        Assert.True(outcome.OutputTruncated);
    }

    [Fact]
    public async Task A_missing_binary_is_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => ProcessRunner.RunAsync(new ProcessSpec("/nonexistent/tool", [])));
        Assert.Contains("/nonexistent/tool", e.Message);
    }
}
