namespace Hull.Core.Metadata;

/// <summary>
/// Timestamps in meta.db are INTEGER Unix time in nanoseconds (UTC), the unit CRI uses: compact,
/// sortable, and an exact round trip of <see cref="DateTimeOffset"/> (100 ns ticks).
/// </summary>
public static class MetadataTime
{
    public static long ToUnixNanoseconds(DateTimeOffset value) =>
        checked((value.UtcTicks - DateTimeOffset.UnixEpoch.Ticks) * 100);

    public static DateTimeOffset FromUnixNanoseconds(long nanoseconds) =>
        new(DateTimeOffset.UnixEpoch.Ticks + nanoseconds / 100, TimeSpan.Zero);
}
