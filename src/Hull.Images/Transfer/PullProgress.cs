namespace Hull.Images.Transfer;

public enum PullPhase { Resolving, Waiting, Downloading, Downloaded, Unpacking, Done, AlreadyPresent }

/// <summary>One step of a pull, per blob: what a progress display draws and what the stall watchdog watches.</summary>
public readonly record struct PullProgress(string Image, string Digest, string Kind, PullPhase Phase, long Bytes, long Total);

/// <summary>
/// Fails a pull only when nothing moved for the configured time (image_pull_progress_timeout), not on a
/// fixed deadline: a slow but steady download of a big image still succeeds.
/// </summary>
internal sealed class StallWatchdog : IDisposable
{
    private readonly TimeSpan _limit;
    private readonly CancellationTokenSource _stalled = new();
    private readonly Timer? _timer;
    private long _lastProgress = Environment.TickCount64;

    public StallWatchdog(TimeSpan limit)
    {
        _limit = limit;
        if (limit <= TimeSpan.Zero) return;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(limit.TotalMilliseconds / 4, 10, 1000));
        _timer = new Timer(_ =>
        {
            if (Environment.TickCount64 - Interlocked.Read(ref _lastProgress) > _limit.TotalMilliseconds) _stalled.Cancel();
        }, null, period, period);
    }

    public CancellationToken Token => _stalled.Token;
    public bool Stalled => _stalled.IsCancellationRequested;
    public TimeSpan Limit => _limit;

    public void Touch() => Interlocked.Exchange(ref _lastProgress, Environment.TickCount64);

    public void Dispose()
    {
        _timer?.Dispose();
        _stalled.Dispose();
    }
}
