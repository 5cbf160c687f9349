using Hull.Core.Events;

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
}
