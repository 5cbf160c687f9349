using System.Text.RegularExpressions;

namespace Hull.Cdi;

/// <summary>
/// Annotations in CDI: the <c>cdi.k8s.io/*</c> container annotations through which older device plugins ask for devices
/// (pkg/cdi/annotations.go), and the rules a spec's or device's own annotations follow (Kubernetes' ValidateAnnotations).
/// </summary>
public static partial class CdiAnnotations
{
    public const string Prefix = "cdi.k8s.io/";

    /// <summary>Kubernetes' limit on all annotations of one object together (keys plus values), in bytes.</summary>
    public const int TotalSizeLimit = 256 * 1024;

    /// <summary>
    /// The devices requested by <c>cdi.k8s.io/</c> annotations, in key order: each value is a comma-separated list of
    /// fully-qualified names (ParseAnnotations). A name that is not fully qualified is an InvalidArgument error.
    /// </summary>
    public static IReadOnlyList<string> RequestedDevices(IReadOnlyDictionary<string, string> annotations)
    {
        List<string>? devices = null;
        // Go's map order is random; the key order makes the result (and the edits' order) stable.
        foreach (var key in annotations.Keys.Where(k => k.StartsWith(Prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            foreach (var device in annotations[key].Split(','))
            {
                if (!CdiNames.TryParseQualified(device, out _, out var reason))
                    throw new CdiException(CdiErrorKind.InvalidArgument, $"annotation \"{key}\" names an invalid CDI device \"{device}\": {reason}");
                (devices ??= []).Add(device);
            }
        }
        return devices ?? (IReadOnlyList<string>)[];
    }

    /// <summary>Problems with a spec's or device's annotations at <paramref name="field"/>, as (field, reason).</summary>
    public static IEnumerable<(string Field, string Reason)> Check(IReadOnlyDictionary<string, string>? annotations, string field)
    {
        if (annotations is null) yield break;
        long size = 0;
        foreach (var (key, value) in annotations)
        {
            size += key.Length + value.Length;
            // A qualified name, except that case does not matter.
            foreach (var reason in CheckQualifiedName(key.ToLowerInvariant()))
                yield return ($"{field}.{key}", $"invalid annotation key: {reason}");
        }
        if (size > TotalSizeLimit) yield return (field, $"annotations take {size} bytes, more than the limit of {TotalSizeLimit}");
    }

    // k8s.io/apimachinery IsQualifiedName: an optional DNS subdomain prefix and '/', then a name of at most 63 characters.
    private static IEnumerable<string> CheckQualifiedName(string value)
    {
        var parts = value.Split('/');
        if (parts.Length > 2)
        {
            yield return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
            yield break;
        }
        string name = parts[^1];
        if (parts.Length == 2)
        {
            string prefix = parts[0];
            if (prefix.Length == 0) yield return "prefix part must be non-empty";
            else
            {
                if (prefix.Length > 253) yield return "prefix part must be no more than 253 characters";
                if (!Dns1123Subdomain().IsMatch(prefix))
                    yield return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
            }
        }
        if (name.Length == 0) yield return "name part must be non-empty";
        else if (name.Length > 63) yield return "name part must be no more than 63 characters";
        if (!QualifiedNamePart().IsMatch(name))
            yield return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Dns1123Subdomain();

    [GeneratedRegex("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")]
    private static partial Regex QualifiedNamePart();
}
