using Hull.Core;

namespace Hull.Runtime.Tasks;

/// <summary>
/// Where container tasks keep their files under the state directory (one home for these names):
/// <code>
/// containers/&lt;id&gt;/task.json       what hulld needs to find the container again after a restart
///                   runtime-state   written before conmon runs, removed once the runtime's delete succeeded: while it
///                                   is there the runtime may hold state for the id (a delete without it runs nothing)
///                   conmon.pid      conmon's pid (conmon -P)
///                   pidfile         the container init's pid (conmon -p, runc --pid-file)
///                   exit, oom       written by conmon (--persist-dir; oom also in its working directory)
/// exits/&lt;id&gt;                      exit code, written by conmon when the container has ended (--exit-dir)
/// attach/&lt;id&gt;                     conmon's symlink to the bundle, whose "attach" socket serves attach (--socket-dir-path)
/// exec/&lt;id&gt;-&lt;exec&gt;/               process.json, pid file and output log of one ExecSync
/// </code>
/// conmon's ctl and winsz FIFOs live in the bundle.
/// </summary>
public sealed class TaskPaths(string stateDirectory)
{
    public string StateDirectory { get; } = stateDirectory;
    public string ContainersDirectory => Path.Combine(StateDirectory, "containers");
    public string ExitsDirectory => Path.Combine(StateDirectory, "exits");
    public string AttachDirectory => Path.Combine(StateDirectory, "attach");
    public string ExecDirectory => Path.Combine(StateDirectory, "exec");

    public string TaskDirectory(string id) => Path.Combine(ContainersDirectory, id);
    public string RecordFile(string id) => Path.Combine(TaskDirectory(id), "task.json");
    public string RuntimeStateMarker(string id) => Path.Combine(TaskDirectory(id), "runtime-state");
    public string ConmonPidFile(string id) => Path.Combine(TaskDirectory(id), "conmon.pid");
    public string ContainerPidFile(string id) => Path.Combine(TaskDirectory(id), "pidfile");
    public string PersistExitFile(string id) => Path.Combine(TaskDirectory(id), "exit");
    public string OomFile(string id) => Path.Combine(TaskDirectory(id), "oom");
    public string ExitFile(string id) => Path.Combine(ExitsDirectory, id);
    public string AttachLink(string id) => Path.Combine(AttachDirectory, id);
    public string AttachSocket(string id) => Path.Combine(AttachLink(id), "attach");
    public static string ControlFifo(string bundle) => Path.Combine(bundle, "ctl");
    public static string WindowSizeFifo(string bundle) => Path.Combine(bundle, "winsz");

    /// <summary>Container ids become file names, runc ids and conmon arguments: keep them to a safe alphabet.</summary>
    public static void ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 128 || id is "." or ".." ||
            !id.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '-' or '.'))
            throw new HullException(ErrorKind.InvalidArgument,
                $"container id \"{id}\" is invalid: use 1 to 128 letters, digits, '_', '-' or '.'");
    }
}
