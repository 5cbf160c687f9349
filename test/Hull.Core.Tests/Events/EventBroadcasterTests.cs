using System.Collections.Concurrent;
using Hull.Core.Events;
using Microsoft.Extensions.Logging;

namespace Hull.Core.Tests.Events;

public sealed class EventBroadcasterTests
{
    private static List<int> Drain(EventBroadcaster<int>.Subscription subscription)
    {
        var items = new List<int>();
        while (subscription.Reader.TryRead(out var item)) items.Add(item);
        return items;
    }

    [Fact]
    public void Every_subscriber_gets_every_event_in_order()
    {
        var broadcaster = new EventBroadcaster<int>();
        using var a = broadcaster.Subscribe();
        using var b = broadcaster.Subscribe();

        for (int i = 0; i < 100; i++) broadcaster.Publish(i);

        Assert.Equal(Enumerable.Range(0, 100), Drain(a));
        Assert.Equal(Enumerable.Range(0, 100), Drain(b));
    }

    [Fact]
    public async Task Concurrent_reader_receives_events_in_publish_order()
    {
        var broadcaster = new EventBroadcaster<int>(capacity: 100_000);
        using var subscription = broadcaster.Subscribe();
        var reading = Task.Run(async () =>
        {
            var seen = new List<int>();
            await foreach (var item in subscription.Reader.ReadAllAsync())
            {
                seen.Add(item);
                if (seen.Count == 10_000) break;
            }
            return seen;
        });

        for (int i = 0; i < 10_000; i++) broadcaster.Publish(i);

        Assert.Equal(Enumerable.Range(0, 10_000), await reading.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Subscriber_only_sees_events_published_after_it_subscribed()
    {
        var broadcaster = new EventBroadcaster<int>();
        broadcaster.Publish(1);
        using var subscription = broadcaster.Subscribe();
        broadcaster.Publish(2);

        Assert.Equal([2], Drain(subscription));
    }

    [Fact]
    public void Slow_subscriber_loses_oldest_events_beyond_capacity()
    {
        var broadcaster = new EventBroadcaster<int>(capacity: 4);
        using var slow = broadcaster.Subscribe();

        for (int i = 1; i <= 10; i++) broadcaster.Publish(i);

        Assert.Equal([7, 8, 9, 10], Drain(slow));
    }

    [Fact]
    public async Task Publish_does_not_block_on_a_subscriber_that_never_reads()
    {
        var broadcaster = new EventBroadcaster<int>(capacity: 8);
        using var stuck = broadcaster.Subscribe();
        using var other = broadcaster.Subscribe();

        var publishing = Task.Run(() =>
        {
            for (int i = 0; i < 100_000; i++) broadcaster.Publish(i);
        });

        // WaitAsync throws TimeoutException if Publish blocked on the full subscriber.
        await publishing.WaitAsync(TimeSpan.FromSeconds(30));
        // Both subscribers hold just the newest events; neither held the other back.
        Assert.Equal(Enumerable.Range(100_000 - 8, 8), Drain(stuck));
        Assert.Equal(Enumerable.Range(100_000 - 8, 8), Drain(other));
    }

    [Fact]
    public async Task Dispose_unsubscribes_and_completes_the_reader()
    {
        var broadcaster = new EventBroadcaster<int>();
        var leaving = broadcaster.Subscribe();
        using var staying = broadcaster.Subscribe();
        Assert.Equal(2, broadcaster.SubscriberCount);

        broadcaster.Publish(1);
        leaving.Dispose();
        broadcaster.Publish(2);

        Assert.Equal(1, broadcaster.SubscriberCount);
        // What was delivered before Dispose can still be drained, then the reader completes.
        Assert.Equal([1], Drain(leaving));
        await leaving.Reader.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([1, 2], Drain(staying));
    }

    [Fact]
    public void Publish_with_no_subscribers_is_a_no_op()
    {
        var broadcaster = new EventBroadcaster<string>();
        broadcaster.Publish("nobody listens");
        Assert.Equal(0, broadcaster.SubscriberCount);
    }
    [Fact]
    public void Events_a_slow_subscriber_loses_are_counted_and_logged_once_per_interval()
    {
        var log = new ListLogger();
        var broadcaster = new EventBroadcaster<int>(capacity: 4, log);
        using var slow = broadcaster.Subscribe();

        for (int i = 1; i <= 10; i++) broadcaster.Publish(i);

        Assert.Equal(6, broadcaster.Dropped);
        Assert.Equal(6, slow.Dropped);
        var warning = Assert.Single(log.Lines);
        Assert.Contains("dropped 1 ", warning);
        Assert.Contains("more than 4 events behind", warning);
    }

    [Fact]
    public void Held_events_go_to_the_next_subscriber_only()
    {
        var broadcaster = new EventBroadcaster<int>(holdFor: TimeSpan.FromMinutes(5));
        broadcaster.Publish(1);
        broadcaster.Publish(2);

        using var first = broadcaster.Subscribe();
        broadcaster.Publish(3);
        using var second = broadcaster.Subscribe();
        broadcaster.Publish(4);

        Assert.Equal([1, 2, 3, 4], Drain(first));
        Assert.Equal([4], Drain(second));
        Assert.Equal(0, broadcaster.Dropped);
    }

    [Fact]
    public void Events_are_held_up_to_the_capacity_and_for_a_limited_time_and_what_goes_is_counted()
    {
        var bounded = new EventBroadcaster<int>(capacity: 3, holdFor: TimeSpan.FromMinutes(5));
        for (int i = 1; i <= 5; i++) bounded.Publish(i);
        using (var late = bounded.Subscribe()) Assert.Equal([3, 4, 5], Drain(late));
        Assert.Equal(2, bounded.Dropped);

        var brief = new EventBroadcaster<int>(holdFor: TimeSpan.FromMilliseconds(1));
        brief.Publish(1);
        Thread.Sleep(50);
        using var tooLate = brief.Subscribe();
        Assert.Empty(Drain(tooLate));
        Assert.Equal(1, brief.Dropped);
    }

    private sealed class ListLogger : ILogger
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue(formatter(state, exception));
    }
}
