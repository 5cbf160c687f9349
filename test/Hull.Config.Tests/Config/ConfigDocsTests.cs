using Hull.Config.Schema;

namespace Hull.Config.Tests.Config;

public class ConfigDocsTests
{
    private static string DocsPath => Path.Combine(TestFiles.RepoRoot, "docs", "configuration.md");

    [Fact]
    public void Configuration_reference_is_generated_from_the_schema()
    {
        string generated = ConfigDocs.Generate();
        if (Environment.GetEnvironmentVariable("HULL_REGENERATE_DOCS") == "1")
        {
            File.WriteAllText(DocsPath, generated);
        }

        string committed = File.Exists(DocsPath) ? File.ReadAllText(DocsPath) : "";
        Assert.True(committed == generated,
            $"docs/configuration.md is not what src/Hull.Config/Schema/ConfigDocs.cs generates from the schema. Regenerate it with: {ConfigDocs.RegenerateHint}");
    }

    [Fact]
    public void Reference_lists_every_key_with_its_default()
    {
        string docs = ConfigDocs.Generate();
        foreach (var key in ConfigSchema.Keys)
        {
            Assert.Contains($"| `{key.Path}` |", docs);
        }

        Assert.Contains("| `containerd.runtimes.<name>.options.SystemdCgroup` | boolean | `false` |", docs);
        Assert.Contains("| `image_pull_progress_timeout` | duration | `\"5m0s\"` |", docs);
        Assert.Contains("| `strict` | boolean | `false` | **Hull only.**", docs);
        Assert.Contains("| `cni.bin_dir` | string |  | **Deprecated**: use `bin_dirs` instead", docs);
        Assert.Contains("| `systemd_cgroup` | set `SystemdCgroup = true`", docs);
        Assert.Contains(ConfigDeprecations.CriRegistryMirrors, docs);
    }
}
