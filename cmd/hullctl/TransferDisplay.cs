using System.Globalization;
using Hull.Api.Admin;
using Spectre.Console;

namespace Hullctl;

/// <summary>
/// Draws the progress of a pull or push: a live table of progress bars, one per blob, on a terminal;
/// plain lines (one per phase change, at most one a second per blob while bytes move) otherwise.
/// </summary>
internal static class TransferDisplay
{
    /// <summary>Consumes the stream, drawing as it goes; returns the final message (the one with the image ID).</summary>
    public static async Task<TransferProgress> RunAsync(IAsyncEnumerable<TransferProgress> stream, string mode, TextWriter output)
    {
        bool live = mode == "tty" || (mode == "auto" && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive);
        if (live) return await LiveAsync(stream);
        var plain = new PlainLines(output, quiet: mode == "none");
        TransferProgress? last = null;
        await foreach (var p in stream)
        {
            last = p;
            if (p.ImageId.Length == 0) plain.Write(p);
        }
        return Final(last);
    }

    private static TransferProgress Final(TransferProgress? last) =>
        last is { ImageId.Length: > 0 } ? last : throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Internal, "the transfer ended without its final message"));

    private static async Task<TransferProgress> LiveAsync(IAsyncEnumerable<TransferProgress> stream)
    {
        TransferProgress? last = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new DownloadedColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var tasks = new Dictionary<(string, string), ProgressTask>();
                await foreach (var p in stream)
                {
                    last = p;
                    if (p.ImageId.Length > 0 || p.Kind == "image") continue;
                    if (!tasks.TryGetValue((p.Digest, p.Kind), out var task))
                    {
                        task = context.AddTask(Markup.Escape(Describe(p)), maxValue: Math.Max(1, p.Total));
                        tasks[(p.Digest, p.Kind)] = task;
                    }
                    task.Description = Markup.Escape(Describe(p));
                    if (p.Total > 0) task.MaxValue = p.Total;
                    task.Value = Math.Min(p.Bytes, task.MaxValue);
                    if (IsFinished(p.Phase))
                    {
                        task.Value = task.MaxValue;
                        task.StopTask();
                    }
                }
                foreach (var task in tasks.Values.Where(t => !t.IsFinished)) task.StopTask();
            });
        return Final(last);
    }

    public static bool IsFinished(string phase) => phase is "done" or "exists" or "pushed";

    private static string Describe(TransferProgress p) =>
        $"{ShortDigest(p.Digest, p.Kind)} {p.Kind,-8} {p.Phase}";

    /// <summary><c>sha256:0123456789ab…</c>; the kind alone for a step without a digest (resolving the manifest).</summary>
    public static string ShortDigest(string digest, string kind)
    {
        if (digest.Length == 0) return kind.PadRight(20);
        int colon = digest.IndexOf(':');
        return colon > 0 && digest.Length > colon + 13 ? digest[..(colon + 13)] + "…" : digest;
    }

    /// <summary>"12.3/45.6 MiB": both in the unit of the total.</summary>
    public static string Progress(long bytes, long total)
    {
        if (total <= 0) return bytes > 0 ? Size(bytes) : "";
        var (divisor, unit) = Unit(total);
        return unit == "B"
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes}/{total} B")
            : string.Create(CultureInfo.InvariantCulture, $"{bytes / divisor:0.0}/{total / divisor:0.0} {unit}");
    }

    public static string Size(long bytes)
    {
        var (divisor, unit) = Unit(bytes);
        return unit == "B" ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{bytes / divisor:0.0} {unit}");
    }

    private static (double Divisor, string Unit) Unit(long bytes) => bytes switch
    {
        >= 1L << 30 => (1L << 30, "GiB"),
        >= 1L << 20 => (1L << 20, "MiB"),
        >= 1L << 10 => (1L << 10, "KiB"),
        _ => (1, "B"),
    };

    /// <summary>CI logs: a line when a blob changes phase, and at most one a second while its bytes move.</summary>
    private sealed class PlainLines(TextWriter output, bool quiet)
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
        private readonly Dictionary<(string, string), (string Phase, long Bytes, DateTime At)> _last = [];

        public void Write(TransferProgress p)
        {
            if (quiet) return;
            var key = (p.Digest, p.Kind);
            var now = DateTime.UtcNow;
            if (_last.TryGetValue(key, out var previous) && previous.Phase == p.Phase &&
                (previous.Bytes == p.Bytes || now - previous.At < Interval) && !(p.Bytes == p.Total && previous.Bytes != p.Bytes))
                return;
            _last[key] = (p.Phase, p.Bytes, now);
            string kind = p.Kind == "image" ? "image" : p.Kind;
            output.WriteLine($"{ShortDigest(p.Digest, kind)} {kind,-8} {p.Phase,-11} {Progress(p.Bytes, p.Total)}".TrimEnd());
        }
    }
}
