using System.Globalization;

namespace Hull.Runtime.Tasks;

/// <summary>One line of a CRI log file: "&lt;RFC3339Nano&gt; stdout|stderr F|P content".</summary>
/// <param name="Partial">P: the line was cut (no newline yet); F: it ends a line.</param>
public sealed record CriLogLine(DateTimeOffset Time, string Stream, bool Partial, string Content);

/// <summary>The CRI container log format conmon's k8s-file driver writes (and the kubelet reads).</summary>
public static class CriLog
{
    /// <summary>Parses every well-formed line; malformed ones are skipped.</summary>
    public static IReadOnlyList<CriLogLine> Parse(string text)
    {
        var lines = new List<CriLogLine>();
        foreach (var line in text.Split('\n'))
        {
            var parts = line.Split(' ', 4);
            if (parts.Length < 3 || parts[2] is not ("F" or "P")) continue;
            if (!TryParseTime(parts[0], out var time)) continue;
            lines.Add(new CriLogLine(time, parts[1], parts[2] == "P", parts.Length > 3 ? parts[3] : ""));
        }
        return lines;
    }

    /// <summary>
    /// Reassembles a process's stdout and stderr from log bytes: a full (F) line gets its newline back, a partial (P)
    /// one does not (conmon adds a newline after the cut content only to end the log line).
    /// </summary>
    public static (byte[] Stdout, byte[] Stderr) Demultiplex(ReadOnlySpan<byte> log)
    {
        var stdout = new MemoryStream();
        var stderr = new MemoryStream();
        while (!log.IsEmpty)
        {
            int end = log.IndexOf((byte)'\n');
            var line = end < 0 ? log : log[..end];
            log = end < 0 ? [] : log[(end + 1)..];
            // timestamp, stream, tag, content
            int s1 = line.IndexOf((byte)' ');
            if (s1 < 0) continue;
            var afterTime = line[(s1 + 1)..];
            int s2 = afterTime.IndexOf((byte)' ');
            if (s2 < 0) continue;
            var stream = afterTime[..s2];
            var afterStream = afterTime[(s2 + 1)..];
            if (afterStream.Length < 1 || (afterStream[0] != (byte)'F' && afterStream[0] != (byte)'P')) continue;
            bool partial = afterStream[0] == (byte)'P';
            var content = afterStream.Length > 2 ? afterStream[2..] : [];
            var target = stream.SequenceEqual("stdout"u8) ? stdout : stream.SequenceEqual("stderr"u8) ? stderr : null;
            if (target is null) continue;
            target.Write(content);
            if (!partial) target.WriteByte((byte)'\n');
        }
        return (stdout.ToArray(), stderr.ToArray());
    }

    /// <summary>Formats one line as conmon does (for tests and tools).</summary>
    public static string Format(DateTimeOffset time, string stream, bool partial, string content) =>
        Prefix(time, stream, partial) + content + "\n";

    /// <summary>What comes before a line's content: "&lt;RFC3339Nano&gt; &lt;stream&gt; &lt;F|P&gt; " (a writer appends raw bytes and a newline).</summary>
    public static string Prefix(DateTimeOffset time, string stream, bool partial) =>
        string.Create(CultureInfo.InvariantCulture, $"{time:yyyy-MM-dd'T'HH:mm:ss.fffffff}00{time:zzz} {stream} {(partial ? 'P' : 'F')} ");

    /// <summary>RFC 3339 with up to nine fractional digits (.NET parses seven).</summary>
    public static bool TryParseTime(string text, out DateTimeOffset time)
    {
        int dot = text.IndexOf('.');
        if (dot > 0)
        {
            int end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end])) end++;
            if (end - dot - 1 > 7) text = text[..(dot + 8)] + text[end..];
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out time);
    }
}
