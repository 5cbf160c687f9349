using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Core.Processes;

namespace Hull.Sandbox.Cni;

/// <summary>What one plugin call is about: the command, the attachment and the pod sandbox (for messages).</summary>
internal sealed record CniInvocation(
    string Command,
    string SandboxId,
    string ContainerId,
    string NetNs,
    string InterfaceName,
    IReadOnlyList<KeyValuePair<string, string>> Args);

/// <summary>
/// Runs CNI plugin binaries through <see cref="ProcessRunner"/> as the spec's runtime does: the plugin is found in
/// the bin dirs in order, its config goes to stdin, the parameters go to <c>CNI_*</c> variables added to hulld's own
/// environment (as libcni does, so plugins find iptables on PATH), and a failure's CNI error JSON on stdout
/// (<c>{"code","msg","details"}</c>) becomes a <see cref="HullException"/> naming the pod sandbox, plugin and network.
/// </summary>
internal sealed class CniPluginInvoker(IReadOnlyList<string> binDirs, TimeSpan timeout)
{

    public IReadOnlyList<string> BinDirs => binDirs;

    /// <summary>The plugin binary, or null when no bin dir has it.</summary>
    public string? Find(string type)
    {
        foreach (var dir in binDirs)
        {
            var path = Path.Combine(dir, type);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>Runs the plugin; returns its stdout parsed as a JSON object for ADD, null otherwise.</summary>
    public async Task<JsonObject?> InvokeAsync(CniInvocation call, string networkName, CniPluginConfig plugin, byte[] stdin,
        CancellationToken cancellationToken)
    {
        string who = $"pod sandbox \"{call.SandboxId}\": CNI plugin \"{plugin.Type}\" of network \"{networkName}\"";
        string binary = Find(plugin.Type) ?? throw new HullException(ErrorKind.FailedPrecondition,
            $"{who} failed to {call.Command} ({call.InterfaceName}): plugin binary not found in {string.Join(':', binDirs)}");

        var spec = new ProcessSpec(binary, [])
        {
            Environment = BuildEnvironment(call),
            ClearEnvironment = true,
            Stdin = stdin,
            Timeout = timeout,
            WorkingDirectory = "/",
        };
        ProcessOutcome outcome;
        try
        {
            outcome = await ProcessRunner.RunAsync(spec, cancellationToken).ConfigureAwait(false);
        }
        catch (HullException e)
        {
            throw new HullException(e.Kind, $"{who} failed to {call.Command} ({call.InterfaceName}): {e.Message}", e);
        }

        if (outcome.ExitCode != 0) throw PluginError(who, call, outcome);
        if (call.Command != "ADD") return null;
        try
        {
            return JsonNode.Parse(outcome.Stdout) as JsonObject ?? throw new JsonException("not a JSON object");
        }
        catch (JsonException e)
        {
            throw new HullException(ErrorKind.Internal,
                $"{who} returned an ADD result that is not a CNI result ({e.Message}): {Excerpt(outcome.StdoutText)}", e);
        }
    }

    private Dictionary<string, string> BuildEnvironment(CniInvocation call)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (!key.StartsWith("CNI_", StringComparison.Ordinal)) env[key] = (string?)e.Value ?? "";
        }
        if (!env.ContainsKey("PATH")) env["PATH"] = Hull.Core.Processes.Executables.DefaultPath;
        env["CNI_COMMAND"] = call.Command;
        env["CNI_CONTAINERID"] = call.ContainerId;
        env["CNI_NETNS"] = call.NetNs;
        env["CNI_IFNAME"] = call.InterfaceName;
        env["CNI_ARGS"] = string.Join(';', call.Args.Select(kv => $"{kv.Key}={kv.Value}"));
        env["CNI_PATH"] = string.Join(':', binDirs);
        return env;
    }

    /// <summary>CNI's well-known error codes (SPEC.md, "Error"); 11 means try again later.</summary>
    private static HullException PluginError(string who, CniInvocation call, ProcessOutcome outcome)
    {
        string? msg = null, details = null;
        int? code = null;
        try
        {
            if (JsonNode.Parse(outcome.Stdout) is JsonObject o)
            {
                code = o["code"] is JsonValue c && c.TryGetValue<int>(out int n) ? n : null;
                msg = o["msg"] is JsonValue m && m.TryGetValue<string>(out var s) ? s : null;
                details = o["details"] is JsonValue d && d.TryGetValue<string>(out var t) ? t : null;
            }
        }
        catch (JsonException) { }

        string text;
        if (msg is not null || code is not null)
        {
            text = msg ?? "(no message)";
            if (!string.IsNullOrEmpty(details)) text += $": {details}";
            if (code is not null) text += $" (CNI error code {code}{(CodeName(code.Value) is { } name ? $", {name}" : "")})";
        }
        else
        {
            text = $"exit code {outcome.ExitCode}";
            var raw = outcome.Stderr.Length > 0 ? outcome.Stderr : outcome.StdoutText.Trim();
            if (raw.Length > 0) text += $": {Excerpt(raw)}";
        }
        var kind = code == 11 ? ErrorKind.Unavailable : ErrorKind.Internal;
        return new HullException(kind, $"{who} failed to {call.Command} ({call.InterfaceName}): {text}");
    }

    private static string? CodeName(int code) => code switch
    {
        1 => "incompatible CNI version",
        2 => "unsupported field in network configuration",
        3 => "container unknown or does not exist",
        4 => "invalid necessary environment variables",
        5 => "I/O failure",
        6 => "failed to decode content",
        7 => "invalid network config",
        11 => "try again later",
        _ => null,
    };

    private static string Excerpt(string s) => s.Length <= 2000 ? s.Trim() : s[..2000].Trim() + "…";
}
