using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Tasks;

namespace Hull.Runtime.Tests.Tasks;

/// <summary>The pieces under the task manager that need no container: log format, conmon messages, spawning, signals.</summary>
public sealed class TaskPrimitivesTests
{
    [Fact]
    public void CRI_log_lines_reassemble_into_streams_with_partial_lines_joined()
    {
        var time = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.FromHours(1)).AddTicks(1234567);
        var log = CriLog.Format(time, "stdout", partial: true, "hel") +
                  CriLog.Format(time, "stdout", partial: false, "lo") +
                  CriLog.Format(time, "stderr", partial: false, "oops") +
                  "garbage without fields\n" +
                  CriLog.Format(time, "stdout", partial: true, "tail");

        var (stdout, stderr) = CriLog.Demultiplex(Encoding.UTF8.GetBytes(log));

        Assert.Equal("hello\ntail", Encoding.UTF8.GetString(stdout));
        Assert.Equal("oops\n", Encoding.UTF8.GetString(stderr));
        var lines = CriLog.Parse(log);
        Assert.Equal(4, lines.Count);
        Assert.Equal(time, lines[0].Time);
        Assert.True(lines[0].Partial);
        Assert.Equal("stderr", lines[2].Stream);
    }

    [Fact]
    public void CRI_log_timestamps_with_nanoseconds_parse()
    {
        Assert.True(CriLog.TryParseTime("2026-11-22T07:45:10.144641363+00:00", out var time));
        Assert.Equal(new DateTimeOffset(2026, 11, 22, 7, 45, 10, TimeSpan.Zero).AddTicks(1446413), time);
        Assert.True(CriLog.TryParseTime("2026-11-22T07:45:10.5Z", out _));
    }

    [Theory]
    [InlineData("{\"data\": 20788}\n", 20788, null)]
    [InlineData("{\"data\": -1, \"message\": \"command timed out\"}", -1, "command timed out")]
    [InlineData("{\"pid\": 42}", 42, null)]
    [InlineData("{\"exit_code\": 3}", 3, null)]
    public void Conmon_sync_messages_parse(string json, int data, string? message)
    {
        var parsed = ConmonProcess.Parse(json);
        Assert.Equal(data, parsed.Data);
        Assert.Equal(message, parsed.Message);
    }

    [Fact]
    public void An_unreadable_conmon_message_is_a_failure_that_quotes_it()
    {
        var parsed = ConmonProcess.Parse("not json");
        Assert.Equal(-1, parsed.Data);
        Assert.Contains("not json", parsed.Message);
    }

    [Fact]
    public void Runc_error_output_is_reduced_to_its_messages()
    {
        var stderr = "time=\"2026-11-22T07:45:44Z\" level=error msg=\"exec failed: unable to start container process: exec: \\\"nonexistent\\\": executable file not found in $PATH\"\n";
        Assert.Equal("exec failed: unable to start container process: exec: \"nonexistent\": executable file not found in $PATH",
            RuncClient.RuncMessage(stderr));
        Assert.True(RuncClient.IsNotFound("time=\"x\" level=error msg=\"container does not exist\""));
    }

    [Theory]
    [InlineData("abc123", true)]
    [InlineData("a.b_c-d", true)]
    [InlineData("..", false)]
    [InlineData("a/b", false)]
    [InlineData("a:b", false)]
    [InlineData("", false)]
    public void Container_ids_are_limited_to_a_path_safe_alphabet(string id, bool valid)
    {
        var error = Record.Exception(() => TaskPaths.ValidateId(id));
        if (valid) Assert.Null(error);
        else Assert.Equal(ErrorKind.InvalidArgument, Assert.IsType<HullException>(error).Kind);
    }

    [Fact]
    public void Resource_updates_serialise_as_OCI_linux_resources_with_only_the_fields_set()
    {
        var resources = new TaskResources { MemoryLimitBytes = 1 << 20, CpuQuota = 50000, CpuPeriod = 100000, Unified = new Dictionary<string, string> { ["memory.high"] = "max" } };
        var json = Hull.Runtime.Spec.OciJson.Serialize(resources.ToOci());
        Assert.Equal("{\"memory\":{\"limit\":1048576},\"cpu\":{\"quota\":50000,\"period\":100000},\"unified\":{\"memory.high\":\"max\"}}", json);
        Assert.Equal("{}", Hull.Runtime.Spec.OciJson.Serialize(new TaskResources().ToOci()));
        Assert.Equal(resources, TaskResources.FromOci(resources.ToOci()));
    }

    [Theory]
    [InlineData("SIGTERM", 15)]
    [InlineData("term", 15)]
    [InlineData("9", 9)]
    [InlineData("SIGRTMIN+3", 37)]
    [InlineData("RTMAX-1", 63)]
    [InlineData("SIGNOPE", null)]
    [InlineData("0", null)]
    public void Signal_names_parse_as_images_spell_them(string text, int? expected) => Assert.Equal(expected, Signals.TryParse(text));

    [Fact]
    public void Proc_stat_lines_parse_even_with_parentheses_in_the_command()
    {
        var info = ProcessInfo.Parse("1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100 18446744073709551615");
        Assert.Equal(1234, info.Pid);
        Assert.Equal("my (odd) cmd", info.Command);
        Assert.Equal('S', info.State);
        Assert.Equal(1, info.ParentPid);
        Assert.Equal(987654UL, info.StartTime);
        var self = ProcessInfo.TryRead(Environment.ProcessId);
        Assert.NotNull(self);
        Assert.True(ProcessInfo.IsAlive(Environment.ProcessId, self.StartTime));
        Assert.False(ProcessInfo.IsAlive(Environment.ProcessId, self.StartTime + 1));
    }

    [Fact]
    public async Task Spawned_children_get_descriptors_at_fixed_numbers_an_exact_environment_and_a_working_directory()
    {
        var (parent, child) = Descriptors.CreateSocketPair();
        using var socket = parent.ToSocket();
        int pid;
        using (child)
        {
            pid = ProcessSpawner.Spawn(new SpawnRequest("/bin/sh", ["-c", "echo \"$GREETING $(pwd)\" >&3; exit 4"])
            {
                Environment = new Dictionary<string, string> { ["GREETING"] = "hello", ["PATH"] = "/usr/bin:/bin" },
                WorkingDirectory = "/tmp",
                Descriptors = new Dictionary<int, SafeHandle> { [3] = child },
            });
        }

        var output = new MemoryStream();
        var buffer = new byte[256];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0) output.Write(buffer, 0, read);
        var status = await ChildProcesses.WaitForExitAsync(pid);

        Assert.Equal("hello /tmp\n", Encoding.UTF8.GetString(output.ToArray()));
        Assert.Equal(4, status.Code);
        Assert.Null(status.Signal);
    }

    [Fact]
    public async Task A_child_killed_by_a_signal_reports_128_plus_the_signal_and_pidfds_see_it_exit()
    {
        int pid = ProcessSpawner.Spawn(new SpawnRequest("/bin/sleep", ["100"]));
        using var pidfd = PidFd.TryOpen(pid);
        Assert.NotNull(pidfd);
        Assert.False(pidfd.HasExited);
        Assert.False(ChildProcesses.TryReap(pid, out _));

        Assert.True(pidfd.TrySendSignal(Signals.SIGKILL));
        await pidfd.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        var status = await ChildProcesses.WaitForExitAsync(pid);

        Assert.Equal(137, status.Code);
        Assert.Equal(Signals.SIGKILL, status.Signal);
        Assert.False(pidfd.TrySendSignal(0));
        Assert.Null(PidFd.TryOpen(pid));
    }

    [Fact]
    public void Opening_a_fifo_nobody_reads_does_not_block()
    {
        var dir = Directory.CreateTempSubdirectory("hull-fifo-");
        try
        {
            var fifo = Path.Combine(dir.FullName, "ctl");
            Hull.Linux.FileNodes.CreateFifo(fifo, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.Null(Descriptors.TryOpenFifoForWrite(fifo));
            Assert.Null(Descriptors.TryOpenFifoForWrite(Path.Combine(dir.FullName, "missing")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
