using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Security;

/// <summary>Turns a container's seccomp choice into linux.seccomp (containerd's generateSeccompSpecOpts).</summary>
public static class SeccompProfiles
{
    /// <summary>The prefix of the deprecated annotation form ("localhost/PATH"), trimmed like containerd does.</summary>
    public const string LocalhostPrefix = "localhost/";

    /// <summary>
    /// Null means no filter. Privileged containers get none; so does Unconfined. RuntimeDefault is
    /// <see cref="SeccompDefaultProfile"/> for the container's bounding capabilities; Localhost reads the JSON profile
    /// at an absolute path. On a host without seccomp anything but Unconfined is a FailedPrecondition error.
    /// </summary>
    public static async Task<OciSeccomp?> ResolveAsync(
        SecurityProfile profile, bool privileged, bool seccompEnabled, IEnumerable<string> boundingCapabilities,
        KernelVersion kernel, string goarch, CancellationToken cancellationToken)
    {
        if (privileged) return null;
        if (!seccompEnabled)
        {
            if (profile.Kind != SecurityProfileKind.Unconfined)
                throw new HullException(ErrorKind.FailedPrecondition, $"seccomp profile {profile.Kind} was requested, but this host's kernel has no seccomp");
            return null;
        }
        if (profile.Kind != SecurityProfileKind.Localhost && !string.IsNullOrEmpty(profile.LocalhostRef))
            throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile {profile.Kind} must not name a localhost profile (\"{profile.LocalhostRef}\")");
        return profile.Kind switch
        {
            SecurityProfileKind.Unconfined => null,
            SecurityProfileKind.RuntimeDefault => SeccompDefaultProfile.Build(boundingCapabilities, kernel, goarch),
            SecurityProfileKind.Localhost => await LoadAsync(profile.LocalhostRef ?? "", cancellationToken).ConfigureAwait(false),
            _ => throw new HullException(ErrorKind.InvalidArgument, $"unknown seccomp profile kind {profile.Kind}"),
        };
    }

    /// <summary>
    /// Reads a Localhost profile: OCI's linux.seccomp object, or a Docker-style profile (its archMap becomes
    /// architectures; fields OCI does not have are ignored).
    /// </summary>
    public static async Task<OciSeccomp> LoadAsync(string reference, CancellationToken cancellationToken)
    {
        string path = reference.StartsWith(LocalhostPrefix, StringComparison.Ordinal) ? reference[LocalhostPrefix.Length..] : reference;
        if (path.Length == 0)
            throw new HullException(ErrorKind.InvalidArgument, "seccomp profile type Localhost needs a profile path");
        if (!Path.IsPathRooted(path))
            throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile path \"{path}\" is not absolute");
        string json;
        try
        {
            json = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile \"{path}\" not found", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile \"{path}\" cannot be read: {e.Message}", e);
        }
        try
        {
            var node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (node is not JsonObject obj)
                throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile \"{path}\" is not a JSON object");
            if (!obj.ContainsKey("architectures") && obj["archMap"] is JsonArray archMap)
            {
                var arches = new JsonArray();
                foreach (var entry in archMap.OfType<JsonObject>())
                {
                    if (entry["architecture"]?.GetValue<string>() is { } a) arches.Add(a);
                    if (entry["subArchitectures"] is JsonArray subs)
                        foreach (var s in subs) if (s?.GetValue<string>() is { } sub) arches.Add(sub);
                }
                obj["architectures"] = arches;
            }
            return obj.Deserialize<OciSeccomp>(OciJson.Options)
                ?? throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile \"{path}\" is empty");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"seccomp profile \"{path}\" is not a valid profile: {e.Message}", e);
        }
    }

    /// <summary>Whether the kernel has seccomp (a "Seccomp:" line in /proc/self/status).</summary>
    public static bool IsEnabled(string statusPath = "/proc/self/status") =>
        File.Exists(statusPath) && File.ReadLines(statusPath).Any(l => l.StartsWith("Seccomp:", StringComparison.Ordinal));
}
