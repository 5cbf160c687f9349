namespace Hull.Cdi;

/// <summary>What kind of failure a <see cref="CdiException"/> is; the names match Hull's error kinds so the caller maps them one to one.</summary>
public enum CdiErrorKind
{
    /// <summary>A request names a device badly (not "vendor/class=name").</summary>
    InvalidArgument,
    /// <summary>A requested device is in no valid spec.</summary>
    NotFound,
    /// <summary>The node does not match a spec: a host device node is missing or of another type.</summary>
    FailedPrecondition,
}

/// <summary>A CDI request that cannot be met; the message names the device and the problem.</summary>
public sealed class CdiException(CdiErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public CdiErrorKind Kind { get; } = kind;
}
