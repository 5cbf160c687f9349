namespace Hull.Cri;

/// <summary>What the CRI services need to know of the daemon's settings (bound from config by hulld).</summary>
public sealed record CriOptions
{
    public required string Root { get; init; }
    public required string State { get; init; }
    public required int MaxReceiveMessageSize { get; init; }
    public required int MaxSendMessageSize { get; init; }
    /// <summary>Deprecation IDs left out of the RuntimeHasNoDeprecationWarnings condition (<c>ignore_deprecation_warnings</c>).</summary>
    public IReadOnlyList<string> IgnoredDeprecations { get; init; } = [];
    public required CniStatusOptions Cni { get; init; }
}

/// <summary>The global CNI settings, as verbose Status reports them.</summary>
public sealed record CniStatusOptions(IReadOnlyList<string> BinDirs, string ConfDir);
