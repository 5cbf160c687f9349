using Hull.Core;
using NriPb = Hull.Api.Nri; // not "Pb": Google.Protobuf 3.36 has a global namespace of that name

namespace Hull.Nri;

/// <summary>
/// Which plugin set which field of which container during one event (containerd/nri's OwningPlugins, pkg/api/owners.go):
/// a second plugin setting a field another one owns fails naming both. Compound fields (annotations, mounts, env, ...)
/// are owned entry by entry. A plugin that removed an entry does not own it: another may set it again.
/// The underlying message goes to validators as it is.
/// </summary>
internal sealed class AdjustmentOwners
{
    private static readonly Google.Protobuf.Reflection.EnumDescriptor FieldEnum =
        NriPb.ApiReflection.Descriptor.EnumTypes.Single(e => e.Name == nameof(NriPb.Field));

    public NriPb.OwningPlugins Message { get; } = new();

    /// <summary>The field's name as upstream spells it in errors (CPUShares, not Cpushares).</summary>
    public static string NameOf(NriPb.Field field) => FieldEnum.FindValueByNumber((int)field)?.Name ?? field.ToString();

    private NriPb.FieldOwners For(string id)
    {
        if (!Message.Owners.TryGetValue(id, out var owners)) Message.Owners[id] = owners = new NriPb.FieldOwners();
        return owners;
    }

    public void Claim(string id, NriPb.Field field, string plugin)
    {
        var owners = For(id);
        if (owners.Simple.TryGetValue((int)field, out var other)) Conflict(field, plugin, other, null);
        owners.Simple[(int)field] = plugin;
    }

    public void Claim(string id, NriPb.Field field, string key, string plugin)
    {
        var owners = For(id);
        if (!owners.Compound.TryGetValue((int)field, out var entries)) owners.Compound[(int)field] = entries = new NriPb.CompoundFieldOwners();
        if (entries.Owners.TryGetValue(key, out var other)) Conflict(field, plugin, other, key);
        entries.Owners[key] = plugin;
    }

    /// <summary>Hooks are appended, never conflicting: every plugin adding some is listed ("a,b").</summary>
    public void Accumulate(string id, NriPb.Field field, string plugin)
    {
        var owners = For(id);
        owners.Simple[(int)field] = owners.Simple.TryGetValue((int)field, out var old) ? $"{old},{plugin}" : plugin;
    }

    public void Clear(string id, NriPb.Field field, string plugin) => For(id).Simple[(int)field] = "-" + plugin;

    public void Clear(string id, NriPb.Field field, string key, string plugin)
    {
        var owners = For(id);
        if (!owners.Compound.TryGetValue((int)field, out var entries)) owners.Compound[(int)field] = entries = new NriPb.CompoundFieldOwners();
        entries.Owners[key] = "-" + plugin;
    }

    /// <summary>The plugins that set a field (any entry of a compound one), for messages.</summary>
    public string[] OwnersOf(string id, NriPb.Field field)
    {
        if (!Message.Owners.TryGetValue(id, out var owners)) return [];
        var result = new List<string>();
        if (owners.Simple.TryGetValue((int)field, out var simple)) result.AddRange(simple.Split(','));
        if (owners.Compound.TryGetValue((int)field, out var entries)) result.AddRange(entries.Owners.Values);
        return result.Select(p => p.TrimStart('-')).Distinct().ToArray();
    }

    public string? SimpleOwner(string id, NriPb.Field field) =>
        Message.Owners.TryGetValue(id, out var o) && o.Simple.TryGetValue((int)field, out var p) ? p : null;

    public IReadOnlyDictionary<string, string> CompoundOwners(string id, NriPb.Field field) =>
        Message.Owners.TryGetValue(id, out var o) && o.Compound.TryGetValue((int)field, out var c)
            ? c.Owners : new Dictionary<string, string>();

    private static void Conflict(NriPb.Field field, string plugin, string other, string? key)
    {
        if (other.StartsWith('-'))
        {
            // The entry was removed: its remover may set it again, and another plugin conflicts with the remover.
            if (other[1..] == plugin) return;
            other = other[1..];
        }
        throw new HullException(ErrorKind.FailedPrecondition,
            $"plugins \"{plugin}\" and \"{other}\" both tried to set {NameOf(field)}{(key is null ? "" : " " + key)}");
    }
}
