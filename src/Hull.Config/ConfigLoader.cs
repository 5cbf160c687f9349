using Hull.Config.Migration;
using Hull.Config.Schema;

namespace Hull.Config;

public enum DiagnosticSeverity { Warning, Error }

/// <summary>What a <see cref="ConfigDiagnostic"/> is about, for callers that filter or count them.</summary>
public enum ConfigDiagnosticKind
{
    Other,
    /// <summary>A version 1 or 2 file was migrated in memory; says how to migrate it for good.</summary>
    ConfigMigrationNotice,
    /// <summary>A key Hull and containerd do not know (fatal in strict mode).</summary>
    UnknownKey,
    /// <summary>A plugin section neither Hull nor containerd knows (fatal in strict mode).</summary>
    UnknownPlugin,
    /// <summary>Sections of containerd plugins Hull does not have; their settings are ignored.</summary>
    IgnoredPlugins,
    /// <summary>A value of the wrong TOML type (always fatal).</summary>
    TypeMismatch,
    /// <summary>A value of the right type that is not allowed (fatal unless said otherwise).</summary>
    InvalidValue,
    /// <summary>A containerd setting Hull accepts but does not use.</summary>
    UnusedKey,
    /// <summary>A containerd 1.x setting removed in containerd 2.0; ignored.</summary>
    RemovedKey,
    /// <summary>A deprecated setting; its ID is in <see cref="ConfigLoadResult.DeprecationIds"/>.</summary>
    Deprecated,
    /// <summary>A key that only matches a known one when case is ignored; it is used, but should be respelled.</summary>
    KeyCase,
}

/// <summary>One finding about a config file, located by key path and line:column where known.</summary>
public sealed record ConfigDiagnostic(DiagnosticSeverity Severity, string Message, string? KeyPath = null, string? Source = null, int Line = 0, int Column = 0)
{
    public ConfigDiagnosticKind Kind { get; init; } = ConfigDiagnosticKind.Other;

    public override string ToString() =>
        (Source, Line) switch
        {
            (not null, > 0) => $"{Source}:{Line}:{Column}: {Message}",
            (null, > 0) => $"{Line}:{Column}: {Message}",
            (not null, _) => $"{Source}: {Message}",
            _ => Message,
        };
}

/// <summary>A loaded configuration with what was found on the way.</summary>
/// <param name="Config">The effective configuration (best effort when there are errors).</param>
/// <param name="Diagnostics">Warnings and errors, in file order.</param>
/// <param name="DeprecationIds">Deprecations the file triggers (<see cref="ConfigDeprecations"/>), each once.</param>
/// <param name="SourceVersion">The version the file was written in (1 when it has no <c>version</c>).</param>
/// <param name="SourcePath">The file, or null for embedded defaults and text.</param>
public sealed record ConfigLoadResult(HullConfig Config, IReadOnlyList<ConfigDiagnostic> Diagnostics, IReadOnlyList<string> DeprecationIds,
    int SourceVersion, string? SourcePath)
{
    public bool HasErrors => Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error);

    /// <summary>True when the file was version 1 or 2 and was migrated in memory.</summary>
    public bool WasMigrated => SourceVersion < Defaults.ConfigVersion;
}

/// <summary>A configuration that cannot be used at all; the message points at the file (and line:column).</summary>
public sealed class ConfigException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Reads containerd-format config files (version 3, migrating 1 and 2) into a <see cref="HullConfig"/>.</summary>
public static class ConfigLoader
{
    /// <summary>The embedded defaults, used when no config file exists.</summary>
    public static ConfigLoadResult Defaults() => new(new HullConfig(), [], [], global::Hull.Config.Defaults.ConfigVersion, null);

    /// <summary>Reads, migrates and checks a config file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="forceStrict">Unknown keys and plugins are errors even without <c>strict = true</c> (hulld --strict-config).</param>
    /// <exception cref="ConfigException">The file cannot be read or is not valid TOML.</exception>
    public static ConfigLoadResult LoadFile(string path, bool forceStrict = false)
    {
        var document = ReadDocument(path);
        return Load(document, forceStrict, path);
    }

    /// <summary>Parses, migrates and checks config text.</summary>
    /// <exception cref="ConfigException">The text is not valid TOML.</exception>
    public static ConfigLoadResult LoadText(string toml, string? sourceName = null, bool forceStrict = false) =>
        Load(ConfigDocument.Parse(toml, sourceName), forceStrict, null);

    /// <summary>Migrates and checks a parsed document. The document's tables are rearranged in place (to version 3).</summary>
    public static ConfigLoadResult Load(ConfigDocument document, bool forceStrict = false, string? sourcePath = null) =>
        Load(document, forceStrict, sourcePath, out _);

    internal static ConfigLoadResult Load(ConfigDocument document, bool forceStrict, string? sourcePath, out bool migrated)
    {
        ArgumentNullException.ThrowIfNull(document);
        var context = new BindContext(document.SourceName, SourceMap.Build(document));
        migrated = ConfigMigration.Migrate(document.Root, context);
        if (!migrated)
        {
            return new ConfigLoadResult(new HullConfig(), context.Finish(strict: forceStrict), context.Deprecations, context.SourceVersion, sourcePath);
        }

        var config = ConfigBinder.Bind(document.Root, context);
        var diagnostics = context.Finish(strict: forceStrict || config.Strict);
        return new ConfigLoadResult(config, diagnostics, context.Deprecations, context.SourceVersion, sourcePath);
    }

    /// <summary>Reads and parses a file, turning I/O and syntax errors into <see cref="ConfigException"/>s.</summary>
    /// <exception cref="ConfigException">The file cannot be read or is not valid TOML.</exception>
    public static ConfigDocument ReadDocument(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            if (Directory.Exists(path))
            {
                throw new ConfigException($"{path}: cannot read config file: it is a directory");
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException($"{path}: cannot read config file: no such file", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ConfigException($"{path}: cannot read config file: permission denied", e);
        }
        catch (IOException e)
        {
            throw new ConfigException($"{path}: cannot read config file: {e.Message}", e);
        }

        return ConfigDocument.ParseUtf8(bytes, path);
    }
}
