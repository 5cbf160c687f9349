namespace Hull.Grpc.Http2;

/// <summary>
/// An outbound flow-control window (RFC 9113 6.9): senders take credit before writing DATA and wait
/// while it is exhausted. The window may go negative after a SETTINGS_INITIAL_WINDOW_SIZE decrease.
/// </summary>
public sealed class FlowWindow(long initial)
{
    private readonly object _gate = new();
    private long _available = initial;
    // Created only when a sender has to wait (most never do): completed and dropped by the next change.
    private TaskCompletionSource? _changed;
    private bool _aborted;

    public long Available { get { lock (_gate) return _available; } }

    /// <summary>How long a sender waits for credit before giving up with <see cref="FlowControlStallException"/>.</summary>
    public TimeSpan StallTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>Adds credit. Returns false when the window would exceed 2^31-1, which the caller reports as FLOW_CONTROL_ERROR.</summary>
    public bool TryAdd(long delta)
    {
        TaskCompletionSource? signal;
        lock (_gate)
        {
            if (_available + delta > Http2Limits.MaxWindowSize) return false;
            _available += delta;
            signal = _changed;
            _changed = null;
        }
        signal?.TrySetResult();
        return true;
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> octets of credit, waiting until at least one is available, at most
    /// <see cref="StallTimeout"/> in all.
    /// </summary>
    public async ValueTask<int> TakeAsync(int max, CancellationToken cancellationToken)
    {
        long waitingSince = 0;
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_aborted) throw new OperationCanceledException("the stream or connection was closed");
                if (_available > 0)
                {
                    int taken = (int)Math.Min(_available, max);
                    _available -= taken;
                    return taken;
                }
                wait = (_changed ??= NewSignal()).Task;
            }
            if (StallTimeout == Timeout.InfiniteTimeSpan)
            {
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }
            long now = Environment.TickCount64;
            if (waitingSince == 0) waitingSince = now;
            var left = StallTimeout - TimeSpan.FromMilliseconds(now - waitingSince);
            try
            {
                if (left <= TimeSpan.Zero) throw new TimeoutException();
                await wait.WaitAsync(left, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new FlowControlStallException(StallTimeout);
            }
        }
    }

    /// <summary>Returns credit that was taken but not used.</summary>
    public void Return(int unused)
    {
        if (unused > 0) TryAdd(unused);
    }

    /// <summary>Wakes and fails every waiter; used when the stream or connection ends.</summary>
    public void Abort()
    {
        TaskCompletionSource? signal;
        lock (_gate)
        {
            _aborted = true;
            signal = _changed;
            _changed = null;
        }
        signal?.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>The peer granted no flow-control window for <see cref="FlowWindow.StallTimeout"/>.</summary>
public sealed class FlowControlStallException(TimeSpan timeout)
    : OperationCanceledException($"the peer granted no flow-control window for {Http2Connection.Seconds(timeout)}");
