using Hull.Linux;

namespace Hull.Tests.Support;

/// <summary>
/// A fresh directory under the system temp directory, for one test. On Dispose, mounts below it are detached and it is
/// deleted with everything in it. Shared by the test projects as a linked source file (test/Shared).
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("hull-tests-").FullName;

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes a file at a path relative to the directory (making its parents); returns its full path.</summary>
    public string Write(string relative, string content)
    {
        string full = System.IO.Path.Join(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    /// <summary>Makes a directory at a path relative to the directory; returns its full path.</summary>
    public string Dir(string relative) => Directory.CreateDirectory(System.IO.Path.Join(Path, relative)).FullName;

    public void Dispose()
    {
        if (Environment.IsPrivilegedProcess)
            foreach (var mountPoint in MountInfo.PointsBelow(Path).OrderByDescending(p => p.Length))
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
