using System.Text.Json.Nodes;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tasks;

namespace Hull.Runtime.Tests.Tasks;

/// <summary>
/// When hulld deletes a stopped container itself and when it leaves the delete to runc, read from runc's state.json
/// (the real deletes are in <see cref="ContainerLifecycleTests"/>).
/// </summary>
public sealed class RuncStoppedContainerTests : IDisposable
{
    private const string Memory = "/sys/fs/cgroup/memory/hull/pod/ctr";
    private const string Unified = "/sys/fs/cgroup/unified/hull/pod/ctr";
    private readonly string _dir = Directory.CreateTempSubdirectory("hull-runc-state-").FullName;

    /// <summary>runc 1.1's state.json of a container with its own PID namespace, whose init (pid_max + 1) cannot exist.</summary>
    private static JsonObject StoppedState() => new()
    {
        ["id"] = "ctr",
        ["init_process_pid"] = 4194305,
        ["init_process_start"] = 1072716,
        ["created"] = "2026-12-07T20:04:42.7547435Z",
        ["rootless"] = false,
        ["cgroup_paths"] = new JsonObject { [""] = Unified, ["memory"] = Memory },
        ["intel_rdt_path"] = "",
        ["config"] = new JsonObject
        {
            ["namespaces"] = new JsonArray(
                new JsonObject { ["type"] = "NEWPID", ["path"] = "" },
                new JsonObject { ["type"] = "NEWNET", ["path"] = "/run/netns/pod" }),
            ["cgroups"] = new JsonObject { ["path"] = "/hull/pod/ctr", ["Systemd"] = false },
            ["Hooks"] = new JsonObject { ["poststart"] = null, ["poststop"] = null, ["prestart"] = null },
        },
    };

    private CgroupPaths? Read(JsonObject state)
    {
        var file = Path.Combine(_dir, "state.json");
        File.WriteAllText(file, state.ToJsonString());
        return RuncStoppedContainer.TryReadDeletable(file);
    }

    [Fact]
    public void A_stopped_container_with_its_own_PID_namespace_is_deletable_and_its_cgroups_are_runcs()
    {
        var paths = Read(StoppedState());

        Assert.NotNull(paths);
        Assert.Equal(Unified, paths.Unified);
        Assert.Equal(Memory, paths.Controller("memory"));
        Assert.Equal([Memory, Unified], paths.Directories.Order());
    }

    [Fact]
    public void An_init_pid_that_now_names_another_process_is_a_stopped_init()
    {
        var state = StoppedState();
        state["init_process_pid"] = Environment.ProcessId;
        state["init_process_start"] = ProcessInfo.TryRead(Environment.ProcessId)!.StartTime + 1;

        Assert.NotNull(Read(state));
    }

    public static TheoryData<string> NotOnlyARemoval => new()
    {
        "init running", "shared PID namespace", "no PID namespace", "poststop hook", "systemd cgroup", "Intel RDT",
        "cgroup outside /sys/fs/cgroup", "cgroup path with ..", "no cgroup_paths", "another runtime's state",
    };

    [Theory]
    [MemberData(nameof(NotOnlyARemoval))]
    public void A_container_whose_delete_is_more_than_a_removal_is_left_to_the_runtime(string what)
    {
        var state = StoppedState();
        var config = state["config"]!.AsObject();
        switch (what)
        {
            case "init running":
                state["init_process_pid"] = Environment.ProcessId;
                state["init_process_start"] = ProcessInfo.TryRead(Environment.ProcessId)!.StartTime;
                break;
            case "shared PID namespace": config["namespaces"]![0]!["path"] = "/proc/1/ns/pid"; break;
            case "no PID namespace": config["namespaces"]!.AsArray().RemoveAt(0); break;
            case "poststop hook":
                config["Hooks"]!["poststop"] = new JsonArray(new JsonObject { ["path"] = "/bin/true" });
                break;
            case "systemd cgroup": config["cgroups"]!["Systemd"] = true; break;
            case "Intel RDT": state["intel_rdt_path"] = "/sys/fs/resctrl/ctr"; break;
            case "cgroup outside /sys/fs/cgroup": state["cgroup_paths"]!["memory"] = "/var/lib/ctr"; break;
            case "cgroup path with ..": state["cgroup_paths"]!["memory"] = "/sys/fs/cgroup/memory/../../../tmp"; break;
            case "no cgroup_paths": state.Remove("cgroup_paths"); break;
            case "another runtime's state":
                state = new JsonObject { ["ociVersion"] = "1.0.2", ["id"] = "ctr", ["status"] = "stopped", ["pid"] = 0 };
                break;
            default: throw new ArgumentOutOfRangeException(nameof(what), what, null);
        }

        Assert.Null(Read(state));
    }

    [Fact]
    public void No_state_or_a_state_that_is_not_JSON_is_left_to_the_runtime()
    {
        Assert.Null(RuncStoppedContainer.TryReadDeletable(Path.Combine(_dir, "missing", "state.json")));
        var file = Path.Combine(_dir, "state.json");
        File.WriteAllText(file, "{\"init_process_pid\": 12, \"conf");
        Assert.Null(RuncStoppedContainer.TryReadDeletable(file));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
