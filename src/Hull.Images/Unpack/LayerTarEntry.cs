namespace Hull.Images.Unpack;

internal enum LayerEntryKind { File, Directory, Symlink, HardLink, CharacterDevice, BlockDevice, Fifo }

/// <summary>One member of a layer tar with the pax/GNU extensions already folded in.</summary>
internal sealed class LayerTarEntry
{
    public required string Name { get; init; }
    public required LayerEntryKind Kind { get; init; }
    public string LinkName { get; init; } = "";
    public UnixFileMode Mode { get; init; }
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public long Size { get; init; }
    public long MtimeSeconds { get; init; }
    public uint MtimeNanoseconds { get; init; }
    /// <summary>Null when the archive has no access time (then the modification time is used, as Go's archive/tar users do).</summary>
    public (long Seconds, uint Nanoseconds)? Atime { get; init; }
    public uint DeviceMajor { get; init; }
    public uint DeviceMinor { get; init; }
    /// <summary>Values are raw bytes: security.capability and friends are binary.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs { get; init; } = [];
    /// <summary>The file's contents; valid until the next entry is read.</summary>
    public Stream Data { get; init; } = Stream.Null;
}
