using Hull.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Registry;

/// <summary>Settings of a <see cref="RegistryClient"/>; the defaults are what hulld uses.</summary>
public sealed record RegistryClientOptions
{
    /// <summary>Retries after the first attempt for transient failures (5xx, 429, connection errors, timeouts).</summary>
    public int MaxRetryAttempts { get; init; } = 3;

    /// <summary>Base of the exponential backoff (with jitter) between retries.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connect timeout for hosts without <c>dial_timeout</c> (containerd's default).</summary>
    public TimeSpan DefaultDialTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a blob stream re-requests the rest of a blob after the connection broke mid-body.</summary>
    public int MaxBlobResumes { get; init; } = 3;

    public string UserAgent { get; init; } = $"{HullInfo.RuntimeName}/{HullInfo.Version}";

    public ILogger Logger { get; init; } = NullLogger.Instance;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
