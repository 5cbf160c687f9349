using NriPb = Hull.Api.Nri; // not "Pb": Google.Protobuf 3.36 has a global namespace of that name

namespace Hull.Nri;

/// <summary>
/// containerd/nri's built-in default validator (plugins/default-validator): rejects adjustments of OCI hooks,
/// seccomp policies, namespaces or sysctls when configured to, and adjustments made without every required plugin.
/// </summary>
internal sealed class DefaultValidator(DefaultValidatorOptions options)
{
    /// <summary>Pods and containers name extra required plugins with this annotation (a YAML list).</summary>
    public const string RequiredPluginsAnnotation = "required-plugins.noderesource.dev";

    public const string Name = "default-validator";

    /// <summary>The reason for rejecting, or null to accept.</summary>
    public string? Validate(NriPb.ValidateContainerAdjustmentRequest request, AdjustmentOwners owners)
    {
        var id = request.Container.Id;
        if (options.RejectOciHookAdjustment && owners.SimpleOwner(id, NriPb.Field.OciHooks) is { } hooks)
            return $"validation error: {(hooks.Contains(',') ? "plugins" : "plugin")} \"{hooks}\" attempted restricted OCI hook injection";

        if (owners.SimpleOwner(id, NriPb.Field.SeccompPolicy) is { } seccomp)
        {
            var profile = request.Container.Linux?.SeccompProfile;
            if ((profile is null || profile.ProfileType == NriPb.SecurityProfile.Types.ProfileType.Unconfined) && options.RejectUnconfinedSeccompAdjustment)
                return $"validation error: plugin {seccomp} attempted restricted unconfined seccomp policy adjustment";
            if (profile?.ProfileType == NriPb.SecurityProfile.Types.ProfileType.RuntimeDefault && options.RejectRuntimeDefaultSeccompAdjustment)
                return $"validation error: plugin {seccomp} attempted restricted runtime default seccomp policy adjustment";
            if (profile?.ProfileType == NriPb.SecurityProfile.Types.ProfileType.Localhost && options.RejectCustomSeccompAdjustment)
                return $"validation error: plugin {seccomp} attempted restricted custom seccomp policy adjustment";
        }

        if (options.RejectNamespaceAdjustment && owners.CompoundOwners(id, NriPb.Field.Namespace) is { Count: > 0 } namespaces)
            return "validation error: attempted restricted namespace adjustment by plugin(s) " +
                string.Join(", ", namespaces.Select(kv => $"\"{kv.Value}\" (namespace \"{kv.Key}\")"));

        if (RequiredPluginsMissing(request) is { } missing) return missing;

        if (options.RejectSysctlAdjustment && request.Adjust?.Linux is { } linux)
        {
            var sysctlOwners = owners.CompoundOwners(id, NriPb.Field.Sysctl);
            var by = linux.Sysctl.Keys.Where(sysctlOwners.ContainsKey).Select(k => sysctlOwners[k]).ToArray();
            if (by.Length > 0) return $"validation error: attempted restricted sysctl adjustment by plugin(s) {string.Join(", ", by)}";
        }
        return null;
    }

    private string? RequiredPluginsMissing(NriPb.ValidateContainerAdjustmentRequest request)
    {
        var container = request.Container.Name;
        if (options.TolerateMissingPluginsAnnotation is { Length: > 0 } tolerate &&
            EffectiveAnnotation(request.Pod, tolerate, container) is { } value)
        {
            if (!bool.TryParse(value, out bool tolerated)) return $"invalid {tolerate} annotation \"{value}\"";
            if (tolerated) return null;
        }
        var required = options.RequiredPlugins.ToList();
        if (EffectiveAnnotation(request.Pod, RequiredPluginsAnnotation, container) is { } annotated) required.AddRange(ParseList(annotated));
        if (required.Count == 0) return null;
        var present = request.Plugins.SelectMany(p => new[] { p.Name, $"{p.Index}-{p.Name}" }).ToHashSet(StringComparer.Ordinal);
        var missing = required.Where(r => !present.Contains(r)).ToArray();
        return missing.Length switch
        {
            0 => null,
            1 => $"validation error: required plugin \"{missing[0]}\" not present",
            _ => $"validation error: required plugins \"{string.Join(",", missing)}\" not present",
        };
    }

    /// <summary>containerd/nri's GetEffectiveAnnotation: KEY/container.NAME, then KEY/pod, then KEY.</summary>
    private static string? EffectiveAnnotation(NriPb.PodSandbox? pod, string key, string container)
    {
        if (pod is null) return null;
        foreach (var k in new[] { $"{key}/container.{container}", $"{key}/pod", key })
            if (pod.Annotations.TryGetValue(k, out var v)) return v;
        return null;
    }

    /// <summary>
    /// The annotation holds a YAML list of names ("[a, b]" or "- a" lines). Names are plain words, so the two list
    /// forms are read here rather than pulling a YAML parser into Hull.Nri.
    /// </summary>
    internal static IEnumerable<string> ParseList(string yaml) =>
        yaml.Trim().TrimStart('[').TrimEnd(']')
            .Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.Trim().TrimStart('-').Trim().Trim('"', '\''))
            .Where(s => s.Length > 0);
}
