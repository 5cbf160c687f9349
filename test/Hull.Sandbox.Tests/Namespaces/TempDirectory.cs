using Hull.Linux;

namespace Hull.Sandbox.Tests.Namespaces;

/// <summary>A fresh directory under the system temp directory; on Dispose, mounts below it are detached and it is deleted.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("hull-sandbox-tests-").FullName;

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        foreach (var mountPoint in MountInfo.MountPointsBelow(Path).OrderByDescending(p => p.Length))
            Mounts.UnmountAll(mountPoint, detach: true);
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

public static class MountInfo
{
    /// <summary>Mount points at or below <paramref name="path"/> in this process's mount namespace (/proc/self/mountinfo field 5).</summary>
    public static IReadOnlyList<string> MountPointsBelow(string path) =>
        File.ReadAllLines("/proc/self/mountinfo")
            .Select(line => line.Split(' ')[4].Replace("\\040", " "))
            .Where(mp => mp == path || mp.StartsWith(path + "/", StringComparison.Ordinal))
            .ToList();
}
