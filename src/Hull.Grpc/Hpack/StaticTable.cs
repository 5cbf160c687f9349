namespace Hull.Grpc.Hpack;

/// <summary>The predefined table of RFC 7541 Appendix A. Index 1 is <see cref="Entries"/>[0].</summary>
internal static class StaticTable
{
    public const int Count = 61;

    // For the encoder. Entries sharing a name are adjacent, so a name lookup plus a short scan finds
    // exact matches without hashing (possibly long) values.
    private static readonly Dictionary<string, int> s_byName = new(StringComparer.Ordinal);

    public static readonly HeaderField[] Entries =
    [
        new(":authority", ""),
        new(":method", "GET"),
        new(":method", "POST"),
        new(":path", "/"),
        new(":path", "/index.html"),
        new(":scheme", "http"),
        new(":scheme", "https"),
        new(":status", "200"),
        new(":status", "204"),
        new(":status", "206"),
        new(":status", "304"),
        new(":status", "400"),
        new(":status", "404"),
        new(":status", "500"),
        new("accept-charset", ""),
        new("accept-encoding", "gzip, deflate"),
        new("accept-language", ""),
        new("accept-ranges", ""),
        new("accept", ""),
        new("access-control-allow-origin", ""),
        new("age", ""),
        new("allow", ""),
        new("authorization", ""),
        new("cache-control", ""),
        new("content-disposition", ""),
        new("content-encoding", ""),
        new("content-language", ""),
        new("content-length", ""),
        new("content-location", ""),
        new("content-range", ""),
        new("content-type", ""),
        new("cookie", ""),
        new("date", ""),
        new("etag", ""),
        new("expect", ""),
        new("expires", ""),
        new("from", ""),
        new("host", ""),
        new("if-match", ""),
        new("if-modified-since", ""),
        new("if-none-match", ""),
        new("if-range", ""),
        new("if-unmodified-since", ""),
        new("last-modified", ""),
        new("link", ""),
        new("location", ""),
        new("max-forwards", ""),
        new("proxy-authenticate", ""),
        new("proxy-authorization", ""),
        new("range", ""),
        new("referer", ""),
        new("refresh", ""),
        new("retry-after", ""),
        new("server", ""),
        new("set-cookie", ""),
        new("strict-transport-security", ""),
        new("transfer-encoding", ""),
        new("user-agent", ""),
        new("vary", ""),
        new("via", ""),
        new("www-authenticate", ""),
    ];

    static StaticTable()
    {
        for (int i = 0; i < Entries.Length; i++)
        {
            // TryAdd keeps the lowest index for duplicate names (e.g. :status 200 = 8).
            s_byName.TryAdd(Entries[i].Name, i + 1);
        }
    }

    /// <summary>
    /// 1-based index of an exact match (<paramref name="exact"/> = true), else of the first entry with
    /// the name, else 0.
    /// </summary>
    public static int Find(string name, string value, out bool exact)
    {
        exact = false;
        if (!s_byName.TryGetValue(name, out int first))
        {
            return 0;
        }

        for (int i = first - 1; i < Entries.Length && string.Equals(Entries[i].Name, name, StringComparison.Ordinal); i++)
        {
            if (string.Equals(Entries[i].Value, value, StringComparison.Ordinal))
            {
                exact = true;
                return i + 1;
            }
        }

        return first;
    }
}
