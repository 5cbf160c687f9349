namespace Hull.Core.Metadata;

/// <summary>meta.db could not be opened or used; the message names the file and the reason.</summary>
public sealed class MetadataStoreException(ErrorKind kind, string path, string reason, Exception? inner = null)
    : HullException(kind, $"metadata store \"{path}\": {reason}", inner)
{
    public string Path { get; } = path;
    public string Reason { get; } = reason;
}
