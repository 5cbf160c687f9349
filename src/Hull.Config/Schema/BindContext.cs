namespace Hull.Config.Schema;

/// <summary>What one load collects: diagnostics, deprecations, and where each bound key was written.</summary>
internal sealed class BindContext(string? sourceName, SourceMap map)
{
    private readonly List<ConfigDiagnostic> _diagnostics = [];
    private readonly List<string> _deprecations = [];

    public string? SourceName { get; } = sourceName;

    public SourceMap Map { get; } = map;

    /// <summary>The version the file was written in; set by migration.</summary>
    public int SourceVersion { get; set; } = Defaults.ConfigVersion;

    /// <summary>Every key that was set, by its version 3 path, with where it was written.</summary>
    public Dictionary<string, Located> Bound { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<string> Deprecations => _deprecations;

    public void Report(DiagnosticSeverity severity, ConfigDiagnosticKind kind, string message, Located? at = null) =>
        _diagnostics.Add(new ConfigDiagnostic(severity, message, at?.Path, SourceName, at?.Position.Line ?? 0, at?.Position.Column ?? 0) { Kind = kind });

    public void Warn(ConfigDiagnosticKind kind, string message, Located? at = null) => Report(DiagnosticSeverity.Warning, kind, message, at);

    public void Error(ConfigDiagnosticKind kind, string message, Located? at = null) => Report(DiagnosticSeverity.Error, kind, message, at);

    public void Deprecate(string id)
    {
        if (!_deprecations.Contains(id))
        {
            _deprecations.Add(id);
        }
    }

    /// <summary>The diagnostics in file order; unknown keys become errors in strict mode (unknown plugins always are).</summary>
    public IReadOnlyList<ConfigDiagnostic> Finish(bool strict) =>
        _diagnostics
            .Select(d => strict && d.Severity == DiagnosticSeverity.Warning && d.Kind is ConfigDiagnosticKind.UnknownKey or ConfigDiagnosticKind.UnknownPlugin
                ? d with { Severity = DiagnosticSeverity.Error, Message = d.Message + " (fatal in strict mode)" }
                : d)
            .OrderBy(d => d.Line)
            .ThenBy(d => d.Column)
            .ToList();
}
