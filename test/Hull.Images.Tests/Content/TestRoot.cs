using Hull.Core.Metadata;
using Hull.Linux;

namespace Hull.Images.Tests.Content;

/// <summary>
/// A Hull root in a fresh temp directory with its meta.db. Dispose unmounts whatever a test left
/// mounted below it (deepest first) before deleting it, so a failed assertion never leaks a mount
/// or deletes through one.
/// </summary>
internal sealed class TestRoot : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("hull-images-tests-").FullName;
    public MetadataStore Metadata { get; private set; }

    public TestRoot() => Metadata = MetadataStore.Open(Path);

    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Closes and reopens meta.db, as a restart of hulld would.</summary>
    public void ReopenMetadata()
    {
        Metadata.Dispose();
        Metadata = MetadataStore.Open(Path);
    }

    public void Dispose()
    {
        Metadata.Dispose();
        foreach (var mountPoint in MountPointsBelow(Path)) Mounts.UnmountAll(mountPoint, detach: true);
        Directory.Delete(Path, recursive: true);
    }

    public static IReadOnlyList<string> MountPointsBelow(string path) =>
        File.ReadAllLines("/proc/self/mounts")
            .Select(line => line.Split(' ')[1].Replace("\\040", " "))
            .Where(p => p.StartsWith(path + "/", StringComparison.Ordinal))
            .OrderByDescending(p => p.Length)
            .ToList();
}
