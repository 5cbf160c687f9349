namespace Hull.Images.Unpack;

/// <summary>How whiteout entries (<c>.wh.&lt;name&gt;</c>, <c>.wh..wh..opq</c>) are applied.</summary>
public enum WhiteoutMode
{
    /// <summary>Delete what they hide: the target holds the whole file system (native snapshots, base layers).</summary>
    Delete,

    /// <summary>Keep them in overlayfs form (char device 0/0, trusted.overlay.opaque=y): the target is an overlay upper directory.</summary>
    Overlay,
}

public sealed record LayerApplyOptions
{
    public WhiteoutMode Whiteouts { get; init; } = WhiteoutMode.Delete;

    /// <summary>
    /// With <see cref="WhiteoutMode.Overlay"/>: the lower directories, topmost first. Parent directories
    /// that the tar does not list take their owner and mode from there, and a hard link to a file of a
    /// lower layer copies that file up first.
    /// </summary>
    public IReadOnlyList<string> ParentDirectories { get; init; } = [];

    /// <summary>Names the layer in error messages.</summary>
    public string? LayerDigest { get; init; }
}
