namespace Hull.Images.Tests.Registry;

/// <summary>A fresh temporary directory, deleted with its contents on Dispose.</summary>
public sealed class TestDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("hull-registry-tests-").FullName;

    public string Sub(params string[] parts) => System.IO.Path.Join([Path, .. parts]);

    /// <summary>Writes a file (creating its directory) and returns its full path.</summary>
    public string Write(string relativePath, string content)
    {
        string full = Sub(relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
