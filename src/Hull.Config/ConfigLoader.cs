namespace Hull.Config;

public enum DiagnosticSeverity { Warning, Error }

/// <summary>One finding about a config file, located by key path and line:column where known.</summary>
public sealed record ConfigDiagnostic(DiagnosticSeverity Severity, string Message, string? KeyPath = null, string? Source = null, int Line = 0, int Column = 0)
{
    public override string ToString() =>
        (Source, Line) switch
        {
            (not null, > 0) => $"{Source}:{Line}:{Column}: {Message}",
            (not null, _) => $"{Source}: {Message}",
            _ => Message,
        };
}

/// <summary>A loaded configuration with what was found on the way.</summary>
public sealed record ConfigLoadResult(HullConfig Config, IReadOnlyList<ConfigDiagnostic> Diagnostics, IReadOnlyList<string> DeprecationIds,
    int SourceVersion, string? SourcePath)
{
    public bool HasErrors => Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error);
}

/// <summary>A configuration that cannot be used; the message points at the file, line and key.</summary>
public sealed class ConfigException(string message) : Exception(message);

public static class ConfigLoader
{
    /// <summary>The embedded defaults, used when no config file exists.</summary>
    public static ConfigLoadResult Defaults() => new(new HullConfig(), [], [], 3, null);

    public static ConfigLoadResult LoadFile(string path, bool forceStrict = false) =>
        throw new ConfigException($"{path}: reading config files lands with the Configuration issue");
}
