using System.Text;
using Hull.Config.Migration;
using Hull.Config.Schema;
using Hull.Config.TomlFiles;

namespace Hull.Config;

/// <summary>What a <c>hulld config</c> command prints and its exit code.</summary>
public sealed record ConfigCommandOutput(int ExitCode, string Stdout, string Stderr);

/// <summary>Command-line settings that take precedence over the file (<c>hulld --root/--state/--address/--log-level</c>).</summary>
public sealed record ConfigOverrides(string? Root = null, string? State = null, string? Address = null, string? LogLevel = null)
{
    public HullConfig ApplyTo(HullConfig config) => config with
    {
        Root = Root ?? config.Root,
        State = State ?? config.State,
        Grpc = config.Grpc with { Address = Address ?? config.Grpc.Address },
        Debug = config.Debug with { Level = LogLevel ?? config.Debug.Level },
    };
}

/// <summary>
/// <c>hulld config default|dump|migrate|check</c> without the console: each returns the text to print
/// and the exit code, so the commands are tested like any other function.
/// </summary>
public static class ConfigCommandsLogic
{
    /// <summary><c>hulld config default</c>: the embedded defaults as a version 3 file.</summary>
    public static ConfigCommandOutput Default() =>
        new(0, ConfigWriter.Write(new HullConfig(), "Hull configuration: the defaults (hulld config default)."), "");

    /// <summary>
    /// <c>hulld config dump</c>: the configuration hulld would run with (after migration and command-line overrides),
    /// as a version 3 file. Exit code 1 when the file has errors.
    /// </summary>
    public static ConfigCommandOutput Dump(string? path, bool strict = false, ConfigOverrides? overrides = null) =>
        Run(() =>
        {
            var result = LoadFileOrDefaults(path, strict);
            var config = (overrides ?? new ConfigOverrides()).ApplyTo(result.Config);
            string origin = result.SourcePath is null ? "embedded defaults" : $"{result.SourcePath} (version {result.SourceVersion})";
            return new ConfigCommandOutput(result.HasErrors ? 1 : 0,
                ConfigWriter.Write(config, $"Hull configuration in effect, from {origin} (hulld config dump)."), Format(result.Diagnostics));
        });

    /// <summary>
    /// <c>hulld config migrate</c>: the file in version 3 form, the way containerd 2.x migrates it, with the keys
    /// containerd 2.0 removed left out and other unknown keys kept. Diagnostics go to stderr; exit code 1 on errors.
    /// </summary>
    public static ConfigCommandOutput Migrate(string? path) =>
        Run(() =>
        {
            string file = path ?? (File.Exists(Defaults.ConfigPath)
                ? Defaults.ConfigPath
                : throw new ConfigException($"no config file to migrate: {Defaults.ConfigPath} does not exist; name one with --config FILE"));
            ConfigDocument document = ConfigLoader.ReadDocument(file);
            var result = ConfigLoader.Load(document, forceStrict: false, file, out bool usable);
            var stderr = new StringBuilder(Format(result.Diagnostics));
            if (!usable)
            {
                return new ConfigCommandOutput(1, "", stderr.ToString());
            }

            if (!result.WasMigrated)
            {
                stderr.Append($"{file} is already version {Defaults.ConfigVersion}; printed as it would be written after migration\n");
            }

            string header = $"# Migrated from version {result.SourceVersion} by `hulld config migrate` (from {file}).\n";
            string body = TomlText.Write(ConfigMigration.ToVersion3File(document.Root));
            return new ConfigCommandOutput(result.HasErrors ? 1 : 0, header + body, stderr.ToString());
        });

    /// <summary><c>hulld config check</c>: diagnostics on stderr, a verdict on stdout, exit code 1 on errors.</summary>
    public static ConfigCommandOutput Check(string? path, bool strict = false) =>
        Run(() =>
        {
            var result = LoadFileOrDefaults(path, strict);
            string source = result.SourcePath ?? "embedded defaults";
            int warnings = result.Diagnostics.Count(d => d.Severity == DiagnosticSeverity.Warning);
            int errors = result.Diagnostics.Count - warnings;
            string verdict = result.HasErrors
                ? $"{source}: config has {Count(errors, "error")} and {Count(warnings, "warning")}; hulld will not start with it\n"
                : $"{source}: config OK{(warnings > 0 ? $" ({Count(warnings, "warning")})" : "")}\n";
            if (result.DeprecationIds.Count > 0)
            {
                verdict += $"deprecations: {string.Join(", ", result.DeprecationIds)}\n";
            }

            return new ConfigCommandOutput(result.HasErrors ? 1 : 0, verdict, Format(result.Diagnostics));
        });

    /// <summary>The file, or <see cref="Defaults.ConfigPath"/> when it exists, or the embedded defaults; as hulld itself loads its config.</summary>
    /// <exception cref="ConfigException">The file cannot be read or parsed.</exception>
    public static ConfigLoadResult LoadFileOrDefaults(string? path, bool strict)
    {
        if (path is not null)
        {
            return ConfigLoader.LoadFile(path, strict);
        }

        return File.Exists(Defaults.ConfigPath) ? ConfigLoader.LoadFile(Defaults.ConfigPath, strict) : ConfigLoader.Defaults();
    }

    /// <summary>Diagnostics one per line, as <c>warning: file:line:col: message</c>.</summary>
    public static string Format(IEnumerable<ConfigDiagnostic> diagnostics)
    {
        var sb = new StringBuilder();
        foreach (var d in diagnostics)
        {
            sb.Append(d.Severity == DiagnosticSeverity.Error ? "error: " : "warning: ").Append(d).Append('\n');
        }

        return sb.ToString();
    }

    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    private static ConfigCommandOutput Run(Func<ConfigCommandOutput> command)
    {
        try
        {
            return command();
        }
        catch (ConfigException e)
        {
            return new ConfigCommandOutput(1, "", $"error: {e.Message}\n");
        }
    }
}
