using System.Threading.Channels;

namespace Hull.Core.Events;

/// <summary>
/// Fans events out to every live subscriber. Publishing never blocks: a subscriber that falls
/// more than its capacity behind loses its oldest events rather than stalling the runtime.
/// </summary>
public sealed class EventBroadcaster<T>
{
    private readonly object _gate = new();
    private readonly int _capacity;
    private Channel<T>[] _subscribers = [];

    public EventBroadcaster(int capacity = 1024) => _capacity = capacity;

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    public void Publish(T item)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers)) subscriber.Writer.TryWrite(item);
    }

    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<T>(new BoundedChannelOptions(_capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        lock (_gate) _subscribers = [.. _subscribers, channel];
        return new Subscription(this, channel);
    }

    private void Unsubscribe(Channel<T> channel)
    {
        lock (_gate) _subscribers = _subscribers.Where(c => c != channel).ToArray();
        channel.Writer.TryComplete();
    }

    public sealed class Subscription(EventBroadcaster<T> owner, Channel<T> channel) : IDisposable
    {
        public ChannelReader<T> Reader => channel.Reader;
        public void Dispose() => owner.Unsubscribe(channel);
    }
}
