using Hull.Linux;

namespace Hull.Core.Tests;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hull-atomic-").FullName;

    [Fact]
    public void DeleteLeftovers_removes_only_the_temporary_files_of_that_file()
    {
        var target = Path.Combine(_dir, "task.json");
        AtomicFile.WriteText(target, "{}");
        // What a writer killed between creating its temporary file and renaming it leaves.
        var leftovers = new[] { ".task.json.2926.f201cbf57c3241999e4fccfdcad2d96e.tmp", ".task.json.1.0.tmp" }.Select(n => Path.Combine(_dir, n)).ToList();
        var others = new[] { ".other.json.2926.abc.tmp", "task.json.tmp", ".task.json.2926.abc" }.Select(n => Path.Combine(_dir, n)).ToList();
        foreach (var file in leftovers.Concat(others)) File.WriteAllText(file, "x");

        AtomicFile.DeleteLeftovers(target);
        AtomicFile.DeleteLeftovers(Path.Combine(_dir, "missing", "task.json")); // no directory: nothing to do

        Assert.DoesNotContain(leftovers, File.Exists);
        Assert.All(others, f => Assert.True(File.Exists(f), $"{f} was deleted"));
        Assert.Equal("{}", File.ReadAllText(target));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
