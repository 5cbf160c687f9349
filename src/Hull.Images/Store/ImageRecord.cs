using Hull.Images.Oci;

namespace Hull.Images.Store;

/// <summary>
/// One name of an image and what it resolved to when pulled. The image ID is the config digest; the
/// chain ID names the committed snapshot containers start from.
/// </summary>
public sealed record ImageRecord(
    string Name,
    Descriptor Target,
    string ManifestDigest,
    string ConfigDigest,
    string ChainId,
    string Snapshotter,
    long Size,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset Created,
    DateTimeOffset Updated)
{
    public string Id => ConfigDigest;

    /// <summary>A name pinned against garbage collection and kubelet image GC (the sandbox image).</summary>
    public bool Pinned => Labels.TryGetValue(ImageLabels.Pinned, out var v) && v == "pinned";
}

public static class ImageLabels
{
    /// <summary>containerd's label for images the kubelet must not garbage-collect.</summary>
    public const string Pinned = "io.cri-containerd.pinned";
}
