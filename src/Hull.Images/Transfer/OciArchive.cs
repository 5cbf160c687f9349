using System.Text.RegularExpressions;
using Hull.Images.Reference;

namespace Hull.Images.Transfer;

/// <summary>
/// The OCI image layout (image-spec image-layout.md) as a tar: <c>oci-layout</c>, <c>index.json</c>
/// naming each image with annotations, and <c>blobs/&lt;algorithm&gt;/&lt;hex&gt;</c>.
/// </summary>
public static partial class OciArchive
{
    public const string LayoutFile = "oci-layout";
    public const string IndexFile = "index.json";
    public const string BlobsDirectory = "blobs";
    public const string LayoutVersion = "1.0.0";

    /// <summary>The OCI annotation: by the spec a tag (<c>latest</c>), though tools also write full references.</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    /// <summary>containerd's annotation with the full image name, written next to the tag-only ref name.</summary>
    public const string ImageNameAnnotation = "io.containerd.image.name";

    /// <summary>index.json and oci-layout are read into memory; larger ones are not an image layout.</summary>
    internal const int MaxMetadataSize = 4 * 1024 * 1024;

    /// <summary>The path of a blob in the layout.</summary>
    public static string BlobPath(string digest)
    {
        Digests.Validate(digest);
        int colon = digest.IndexOf(':');
        return $"{BlobsDirectory}/{digest[..colon]}/{digest[(colon + 1)..]}";
    }

    /// <summary>
    /// The ref name to write for an image name, as containerd's exporter does: the tag (the OCI meaning),
    /// or null for a name by digest, which the containerd annotation carries alone.
    /// </summary>
    public static string? RefName(ImageReference name) => name.Tag;

    /// <summary>
    /// The image name an index.json entry gives: containerd's full-name annotation, else the ref name when
    /// it is a full reference (a bare tag such as <c>latest</c> names no repository and is not a name).
    /// </summary>
    public static ImageReference? NameOf(IReadOnlyDictionary<string, string>? annotations)
    {
        if (annotations is null) return null;
        if (annotations.TryGetValue(ImageNameAnnotation, out var full) && ImageReference.TryParseDockerRef(full, out var parsed)) return parsed;
        if (annotations.TryGetValue(RefNameAnnotation, out var refName) && !IsBareTag(refName) &&
            ImageReference.TryParseDockerRef(refName, out parsed)) return parsed;
        return null;
    }

    public static bool IsBareTag(string refName) => BareTag().IsMatch(refName);

    [GeneratedRegex(@"^[\w][\w.-]{0,127}$")]
    private static partial Regex BareTag();
}
