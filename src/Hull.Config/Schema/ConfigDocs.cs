using System.Text;
using Hull.Config.Migration;

namespace Hull.Config.Schema;

/// <summary>
/// Generates docs/configuration.md from <see cref="ConfigSchema"/>. A test compares the committed file with
/// this output; <c>HULL_REGENERATE_DOCS=1 dotnet test test/Hull.Config.Tests</c> rewrites it.
/// </summary>
public static class ConfigDocs
{
    public const string RegenerateHint = "HULL_REGENERATE_DOCS=1 dotnet test test/Hull.Config.Tests";

    public static string Generate()
    {
        var md = new StringBuilder();
        md.Append($"""
            # Configuration reference

            <!-- Generated from src/Hull.Config/Schema/ConfigSchema.cs; do not edit. Regenerate with `{RegenerateHint}`. -->

            Hull reads one TOML file, `{Defaults.ConfigPath}` (or `hulld --config FILE`), in containerd's configuration
            format, so a node's containerd config works unchanged. Without a file hulld runs on the defaults below.
            The file is TOML 1.0, as containerd reads it: a syntax error stops hulld naming the line and column, and so do
            the additions of TOML 1.1 (inline tables over several lines or with a trailing comma, `\x` and `\e` escapes,
            times without seconds), which containerd would refuse.

            - **Versions.** `version = 3` is containerd 2.x's format and Hull's. Version 2 (containerd 1.x, one
              `[plugins."io.containerd.grpc.v1.cri"]` section) and version 1 (no `version` key, short plugin names such as
              `[plugins.cri]`) are migrated in memory at every start, as containerd 2.x does; the file is left alone, and a
              warning and a deprecation (`{ConfigDeprecations.ConfigVersion2}`, `{ConfigDeprecations.ConfigVersion1}`) say so.
              `hulld config migrate --config FILE > new.toml` writes the version 3 file.
            - **Unknown keys** are reported with their full path, line and column, and the closest known key
              (`did you mean ...?`). Unknown plugin sections are reported too (containerd silently ignores them). Both are
              warnings, or errors that stop hulld with `strict = true` or `hulld --strict-config`. A key that matches a
              known one only when case is ignored is used (containerd matches case-insensitively) with a warning.
            - **containerd settings Hull does not use** are accepted; setting one to something else than containerd's
              default prints a warning. Keys containerd 2.0 removed are ignored with a warning saying what replaces them.
              Sections of containerd plugins Hull does not have (listed at the end) are ignored with one warning.
            - **Types are checked**: a string where an integer, boolean, list or duration is expected is an error, always.
              Durations are strings in Go syntax: `"30s"`, `"5m"`, `"1.5h"`, `"4h0m0s"`, `"100ms"`.
            - **Commands**: `hulld config default` prints the defaults, `hulld config dump` the configuration in effect
              (after migration and command-line overrides), `hulld config migrate` the version 3 form of a file, and
              `hulld config check` the diagnostics (exit code 1 on errors).

            Columns: the key's path inside its section, its type, its default (as TOML), and what it does.
            Defaults are containerd 2.x's except where a note says otherwise.

            """);

        foreach (var section in ConfigSchema.Keys.GroupBy(k => k.Section))
        {
            md.Append('\n');
            if (section.Key.Length == 0)
            {
                md.Append("## Top level\n\n");
            }
            else
            {
                md.Append($"## `[plugins.'{section.Key}']`\n\n");
                var plugin = ConfigSchema.Root.OfType<PluginsNode>().Single().Plugins.Single(p => p.Key == section.Key);
                md.Append(plugin.Description).Append("\n\n");
            }

            AppendTable(md, section.Where(k => k.Usage is ConfigKeyUsage.Used or ConfigKeyUsage.HullOnly or ConfigKeyUsage.Deprecated).ToList());
            var ignored = section.Where(k => k.Usage == ConfigKeyUsage.Ignored).ToList();
            if (ignored.Count > 0)
            {
                md.Append("\ncontainerd settings Hull accepts and does not use (a warning when set to another value than the default shown):\n\n");
                md.Append("| Key | Type | containerd default | What it does in containerd |\n|---|---|---|---|\n");
                foreach (var key in ignored)
                {
                    md.Append($"| `{key.Path}` | {TypeName(key.Type)} | {Code(key.Default)} | {Cell(key.Description)} |\n");
                }
            }

            var removed = section.Where(k => k.Usage == ConfigKeyUsage.Removed).ToList();
            if (removed.Count > 0)
            {
                md.Append("\ncontainerd 1.x settings removed in containerd 2.0 (ignored with a warning when set):\n\n");
                md.Append("| Key | Instead |\n|---|---|\n");
                foreach (var key in removed)
                {
                    md.Append($"| `{key.Path}` | {Cell(key.Note ?? "")} |\n");
                }
            }
        }

        md.Append($"""

            ## Other containerd plugins

            Sections of these containerd plugins are accepted and ignored (one warning lists the ones present);
            Hull has no counterpart for them. Any other plugin ID is reported as unknown.

            {string.Join("\n", ConfigSchema.ContainerdOnlyPlugins.Select(p => $"- `{p}`"))}

            ## Migration of version 1 and 2 files

            Version 1 names plugins by short names; they become full IDs first (`cri` → `io.containerd.grpc.v1.cri`,
            `linux` → `io.containerd.runtime.v1.linux`, `overlayfs` → `io.containerd.snapshotter.v1.overlayfs`, ...;
            other short names `x` become `io.containerd.grpc.v1.x` with a warning). The version 2 section
            `[plugins."io.containerd.grpc.v1.cri"]` is then split as containerd 2.x splits it:

            | Version 2 key in `[plugins."io.containerd.grpc.v1.cri"]` | Version 3 |
            |---|---|
            | `sandbox_image` | `pinned_images.sandbox` in `[plugins.'{ConfigSchema.ImagesPlugin}']` (deprecation `{ConfigDeprecations.SandboxImage}`) |
            {string.Join("\n", ConfigMigration.ImagesKeysOfContainerd.Select(k => $"| `containerd.{k}` | `{k}` in `[plugins.'{ConfigSchema.ImagesPlugin}']` |"))}
            {string.Join("\n", ConfigMigration.ImagesKeys.Select(k => $"| `{k}` | `{k}` in `[plugins.'{ConfigSchema.ImagesPlugin}']` |"))}
            {string.Join("\n", ConfigMigration.ServerKeys.Select(k => $"| `{k}` | `{k}` in `[plugins.'{ConfigSchema.ServerPlugin}']` |"))}
            | `containerd.runtimes.<name>.sandbox_mode` | `containerd.runtimes.<name>.sandboxer` in `[plugins.'{ConfigSchema.RuntimePlugin}']` |
            | `cni.bin_dir` | `cni.bin_dirs = [bin_dir]` in `[plugins.'{ConfigSchema.RuntimePlugin}']` (deprecation `{ConfigDeprecations.CriCniBinDir}`) |
            | everything else (`containerd.*`, `cni.*`, `enable_selinux`, ...) | the same key in `[plugins.'{ConfigSchema.RuntimePlugin}']` |

            `registry.mirrors` moves with `registry` but Hull does not use it: it reads registry mirrors only from hosts.toml
            files under `config_path`. The warning about it prints the hosts.toml files that configure the same mirrors.

            ## Deprecations

            Deprecation IDs a config file can trigger (containerd's IDs; hulld records them, and `ignore_deprecation_warnings`
            can exclude them from the node condition):

            | ID | When |
            |---|---|
            | `{ConfigDeprecations.ConfigVersion1}` | the file is version 1 (or has no `version`) |
            | `{ConfigDeprecations.ConfigVersion2}` | the file is version 2 |
            | `{ConfigDeprecations.CriRegistryMirrors}` | `registry.mirrors` is set (Hull ignores it) |
            | `{ConfigDeprecations.CriRegistryConfigs}` | `registry.configs` is set (Hull ignores it) |
            | `{ConfigDeprecations.CriRegistryAuths}` | `registry.auths` is set (Hull ignores it) |
            | `{ConfigDeprecations.CriCniBinDir}` | `cni.bin_dir` is set |
            | `{ConfigDeprecations.SandboxImage}` | `sandbox_image` is set (version 1 and 2) |
            | `{ConfigDeprecations.RuntimeRuncV1}` | a runtime has `runtime_type = "io.containerd.runc.v1"` |
            | `{ConfigDeprecations.RuntimeV1}` | a runtime has `runtime_type = "io.containerd.runtime.v1.linux"` |
            | `{ConfigDeprecations.AufsSnapshotter}` | a snapshotter is `aufs` (an error: Hull has only overlayfs) |

            """);
        return md.ToString();
    }

    private static void AppendTable(StringBuilder md, IReadOnlyList<ConfigKeyInfo> keys)
    {
        md.Append("| Key | Type | Default | Description |\n|---|---|---|---|\n");
        foreach (var key in keys)
        {
            string description = key.Usage switch
            {
                ConfigKeyUsage.HullOnly => "**Hull only.** " + key.Description,
                ConfigKeyUsage.Deprecated => "**Deprecated**: " + key.Note + ". " + key.Description,
                _ => key.Description + (key.Note is null ? "" : $" *Note: {key.Note}*"),
            };
            md.Append($"| `{key.Path}` | {TypeName(key.Type)} | {Code(key.Default)} | {Cell(description)} |\n");
        }
    }

    private static string Code(string? value) => value switch
    {
        null => "",
        _ when value.Contains('`') => Cell(value),
        _ => $"`{Cell(value)}`",
    };

    private static string Cell(string text) => text.Replace("|", "\\|").Replace("\n", " ");

    private static string TypeName(ConfigValueType type) => type switch
    {
        ConfigValueType.String => "string",
        ConfigValueType.Integer => "integer",
        ConfigValueType.Boolean => "boolean",
        ConfigValueType.Duration => "duration",
        ConfigValueType.StringList => "list of strings",
        ConfigValueType.StringMap => "table of strings",
        ConfigValueType.Table => "table",
        ConfigValueType.TableArray => "array of tables",
        _ => "any",
    };
}
