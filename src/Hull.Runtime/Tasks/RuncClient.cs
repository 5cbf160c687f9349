using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Core.Processes;

namespace Hull.Runtime.Tasks;

/// <summary>What <c>runc state</c> prints (the OCI state), the fields Hull uses.</summary>
internal sealed record RuncState(string Status, int Pid, string? Bundle);

/// <summary>
/// The short OCI runtime commands (state, start, kill, delete, update), each a run of the process runner with the
/// runtime's --root (but most deletes of a stopped container, see <see cref="RuncStoppedContainer"/>). Errors name the
/// container; "does not exist" becomes NotFound and "not running" FailedPrecondition.
/// </summary>
internal sealed class RuncClient(string runtimePath, string root, bool systemdCgroup, TimeSpan timeout)
{
    public string RuntimePath { get; } = runtimePath;
    public string Root { get; } = root;

    /// <summary>The runtime arguments conmon passes before the command (--runtime-arg).</summary>
    public IReadOnlyList<string> GlobalArguments => systemdCgroup ? ["--root=" + Root, "--systemd-cgroup"] : ["--root=" + Root];

    /// <summary>Null when the runtime does not know the container.</summary>
    public async Task<RuncState?> StateAsync(string id, CancellationToken cancellationToken)
    {
        var outcome = await RunAsync(["state", id], null, cancellationToken).ConfigureAwait(false);
        if (outcome.ExitCode != 0)
        {
            if (IsNotFound(outcome.Stderr)) return null;
            throw Failure("state", id, outcome);
        }
        try
        {
            var node = JsonNode.Parse(outcome.Stdout)!.AsObject();
            return new RuncState(node["status"]?.GetValue<string>() ?? "unknown", node["pid"]?.GetValue<int>() ?? 0,
                node["bundle"]?.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new HullException(ErrorKind.Internal, $"{RuntimePath} state of container \"{id}\" is unreadable: {e.Message}", e);
        }
    }

    public Task StartAsync(string id, CancellationToken cancellationToken) => CheckedAsync("start", id, ["start", id], null, cancellationToken);

    public Task KillAsync(string id, int signal, bool all, CancellationToken cancellationToken) =>
        CheckedAsync("kill", id, all ? ["kill", "--all", id, Num(signal)] : ["kill", id, Num(signal)], null, cancellationToken);

    /// <summary>
    /// runc delete --force: kills what still runs and removes the runtime state and cgroup; a missing container is fine.
    /// A stopped container whose delete is only that is deleted without a run of runc (<see cref="RuncStoppedContainer"/>).
    /// </summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        if (!systemdCgroup && await RuncStoppedContainer.TryDeleteAsync(Root, id, cancellationToken).ConfigureAwait(false)) return;
        var outcome = await RunAsync(["delete", "--force", id], null, cancellationToken).ConfigureAwait(false);
        if (outcome.ExitCode != 0 && !IsNotFound(outcome.Stderr)) throw Failure("delete", id, outcome);
    }

    public Task UpdateAsync(string id, Spec.OciResources resources, CancellationToken cancellationToken) =>
        CheckedAsync("update", id, ["update", "--resources", "-", id], Spec.OciJson.SerializeToUtf8Bytes(resources), cancellationToken);

    private async Task CheckedAsync(string command, string id, string[] arguments, byte[]? stdin, CancellationToken cancellationToken)
    {
        var outcome = await RunAsync(arguments, stdin, cancellationToken).ConfigureAwait(false);
        if (outcome.ExitCode != 0) throw Failure(command, id, outcome);
    }

    private Task<ProcessOutcome> RunAsync(string[] arguments, byte[]? stdin, CancellationToken cancellationToken) =>
        ProcessRunner.RunAsync(new ProcessSpec(RuntimePath, [.. GlobalArguments, .. arguments]) { Stdin = stdin, Timeout = timeout },
            cancellationToken);

    private HullException Failure(string command, string id, ProcessOutcome outcome)
    {
        var message = RuncMessage(outcome.Stderr);
        var kind = IsNotFound(outcome.Stderr) ? ErrorKind.NotFound
            : message.Contains("not running", StringComparison.OrdinalIgnoreCase) || message.Contains("stopped", StringComparison.OrdinalIgnoreCase)
                ? ErrorKind.FailedPrecondition
                : ErrorKind.Internal;
        if (kind == ErrorKind.NotFound) return new HullException(kind, $"container \"{id}\" not found by {Path.GetFileName(RuntimePath)}");
        return new HullException(kind, $"{Path.GetFileName(RuntimePath)} {command} of container \"{id}\" failed (exit code {outcome.ExitCode}): {message}");
    }

    internal static bool IsNotFound(string stderr) =>
        stderr.Contains("does not exist", StringComparison.OrdinalIgnoreCase) ||
        stderr.Contains("container not found", StringComparison.OrdinalIgnoreCase);

    /// <summary>runc logs as logrus text (time="…" level=error msg="…"); keep just the messages.</summary>
    internal static string RuncMessage(string stderr)
    {
        var messages = new List<string>();
        foreach (var line in stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int at = line.IndexOf("msg=\"", StringComparison.Ordinal);
            if (at < 0)
            {
                messages.Add(line.Trim());
                continue;
            }
            var sb = new StringBuilder();
            for (int i = at + 5; i < line.Length && line[i] != '"'; i++)
            {
                if (line[i] == '\\' && i + 1 < line.Length) i++;
                sb.Append(line[i]);
            }
            messages.Add(sb.ToString());
        }
        return messages.Count == 0 ? "(no error output)" : string.Join("; ", messages);
    }

    private static string Num(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
