using Hull.Grpc.Http2;

namespace Hull.Grpc.Tests.Http2;

/// <summary>The outbound flow-control window (RFC 9113 6.9.1, 6.9.2).</summary>
public class FlowWindowTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task TakesUpToWhatIsAvailable()
    {
        var window = new FlowWindow(100);
        Assert.Equal(60, await window.TakeAsync(60, default));
        Assert.Equal(40, await window.TakeAsync(60, default));
        Assert.Equal(0, window.Available);
    }

    [Fact]
    public async Task WaitsUntilCreditArrives()
    {
        var window = new FlowWindow(0);
        var take = window.TakeAsync(500, default).AsTask();
        await Task.Delay(50);
        Assert.False(take.IsCompleted);
        Assert.True(window.TryAdd(200));
        Assert.Equal(200, await take.WaitAsync(Timeout));
    }

    [Fact]
    public async Task NegativeWindowWaitsUntilItIsPositiveAgain()
    {
        var window = new FlowWindow(100);
        Assert.True(window.TryAdd(-300)); // SETTINGS_INITIAL_WINDOW_SIZE shrank below what was in flight
        Assert.Equal(-200, window.Available);
        var take = window.TakeAsync(1000, default).AsTask();
        Assert.True(window.TryAdd(150));
        await Task.Delay(50);
        Assert.False(take.IsCompleted);
        Assert.True(window.TryAdd(100));
        Assert.Equal(50, await take.WaitAsync(Timeout));
    }

    [Fact]
    public void OverflowBeyondTwoToTheThirtyOneIsRefusedAndLeavesTheWindowAlone()
    {
        var window = new FlowWindow(65_535);
        Assert.True(window.TryAdd(int.MaxValue - 65_535));
        Assert.Equal(int.MaxValue, window.Available);
        Assert.False(window.TryAdd(1));
        Assert.Equal(int.MaxValue, window.Available);
    }

    [Fact]
    public async Task ReturnGivesBackUnusedCredit()
    {
        var window = new FlowWindow(10);
        Assert.Equal(10, await window.TakeAsync(10, default));
        window.Return(4);
        window.Return(0);
        Assert.Equal(4, window.Available);
    }

    [Fact]
    public async Task AbortFailsCurrentAndFutureWaiters()
    {
        var window = new FlowWindow(0);
        var take = window.TakeAsync(1, default).AsTask();
        window.Abort();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => take.WaitAsync(Timeout));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => window.TakeAsync(1, default).AsTask().WaitAsync(Timeout));
    }

    [Fact]
    public async Task CancellationStopsTheWaitWithoutTakingCredit()
    {
        var window = new FlowWindow(0);
        using var cts = new CancellationTokenSource();
        var take = window.TakeAsync(10, cts.Token).AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => take.WaitAsync(Timeout));
        window.TryAdd(10);
        Assert.Equal(10, window.Available);
    }

    [Fact]
    public async Task ConcurrentTakersNeverOverdraw()
    {
        var window = new FlowWindow(0);
        long taken = 0;
        var takers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < 50; i++) Interlocked.Add(ref taken, await window.TakeAsync(7, default));
        })).ToArray();
        long granted = 0;
        var deadline = DateTime.UtcNow + Timeout;
        while (!takers.All(t => t.IsCompleted))
        {
            Assert.True(Interlocked.Read(ref taken) <= granted);
            if (window.Available <= 0)
            {
                window.TryAdd(13);
                granted += 13;
            }
            await Task.Delay(1);
            Assert.True(DateTime.UtcNow < deadline, "takers starved");
        }
        await Task.WhenAll(takers).WaitAsync(Timeout);
        Assert.InRange(taken, 8 * 50, 8 * 50 * 7);
        Assert.Equal(granted - taken, window.Available);
    }
}
