namespace Hull.Cdi.Tests;

/// <summary>A temporary directory tree for spec files; removed with everything in it on dispose.</summary>
public sealed class SpecDirectory : IDisposable
{
    public SpecDirectory()
    {
        Root = Path.Combine(Path.GetTempPath(), $"hull-cdi-test-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>A directory under the root (not created).</summary>
    public string Dir(string name) => Path.Combine(Root, name);

    /// <summary>Writes <paramref name="text"/> to <paramref name="dir"/>/<paramref name="file"/>, creating the directory.</summary>
    public string Write(string dir, string file, string text)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, file);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Writes a file the way vendors do: a temporary file renamed into place.</summary>
    public string WriteAtomically(string dir, string file, string text)
    {
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{file}.tmp");
        File.WriteAllText(temp, text);
        string path = Path.Combine(dir, file);
        File.Move(temp, path, overwrite: true);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}

/// <summary>A test with the two spec directories of a node (static, then generated), in a fresh temporary tree.</summary>
public abstract class TwoSpecDirectories : IDisposable
{
    protected readonly SpecDirectory _tmp = new();
    /// <summary>Not created: a missing directory is part of what some tests check.</summary>
    protected readonly string _etc, _run;

    protected TwoSpecDirectories()
    {
        _etc = _tmp.Dir("etc-cdi");
        _run = _tmp.Dir("run-cdi");
    }

    public void Dispose()
    {
        _tmp.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Small spec texts for tests.</summary>
public static class Specs
{
    /// <summary>A YAML spec of <paramref name="kind"/> with one device per name, each setting an env variable.</summary>
    public static string Yaml(string kind, params string[] devices) => Yaml("0.6.0", kind, devices);

    public static string Yaml(string version, string kind, string[] devices) =>
        $"cdiVersion: \"{version}\"\nkind: {kind}\ndevices:\n" +
        string.Concat(devices.Select(d => $"  - name: {d}\n    containerEdits:\n      env: [\"DEVICE_{d.Replace('-', '_').ToUpperInvariant()}=1\"]\n"));

    /// <summary>Parses <paramref name="text"/> as the file <paramref name="name"/> and returns its problems.</summary>
    public static IReadOnlyList<CdiSpecError> Errors(string text, string name = "test.yaml") =>
        CdiSpecFile.Parse(System.Text.Encoding.UTF8.GetBytes(text), name).Errors;

    public static CdiSpecFile Valid(string text, string name = "test.yaml")
    {
        var (spec, errors) = CdiSpecFile.Parse(System.Text.Encoding.UTF8.GetBytes(text), name);
        Assert.True(spec is not null, string.Join("\n", errors));
        return spec!;
    }
}
