using System.Text;
using Hull.Images.Reference;

namespace Hull.Images.Unpack;

/// <summary>
/// Chain IDs name a stack of layers (OCI image-spec config.md): ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). Snapshots of unpacked layers are keyed by them.
/// </summary>
public static class ChainIds
{
    public static string Next(string? parentChainId, string diffId)
    {
        Digests.Validate(diffId);
        return parentChainId is null ? diffId : Digests.Sha256(Encoding.UTF8.GetBytes(parentChainId + " " + diffId));
    }

    /// <summary>The chain ID of every prefix of <paramref name="diffIds"/>: element i names layers 0..i.</summary>
    public static IReadOnlyList<string> Compute(IReadOnlyList<string> diffIds)
    {
        var chain = new string[diffIds.Count];
        string? parent = null;
        for (int i = 0; i < diffIds.Count; i++) parent = chain[i] = Next(parent, diffIds[i]);
        return chain;
    }
}
