using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Core.Events;

/// <summary>
/// Fans events out to every live subscriber. Publishing never blocks: a subscriber that falls
/// more than its capacity behind loses its oldest events rather than stalling the runtime; every
/// loss is counted (<see cref="Dropped"/>) and logged, at most once per <see cref="DropLogInterval"/>.
/// With <c>holdFor</c> set, events published while nobody subscribes are held (up to the capacity,
/// for that long) and handed to the next subscriber, as containerd's CRI event queue does: a kubelet
/// that reconnects after a restart still learns what changed meanwhile.
/// </summary>
public sealed class EventBroadcaster<T>
{
    internal static readonly TimeSpan DropLogInterval = TimeSpan.FromSeconds(10);

    private readonly object _gate = new();
    private readonly int _capacity;
    private readonly ILogger _logger;
    private readonly TimeSpan? _holdFor;
    private readonly Queue<(T Item, long At)> _held = new();
    private Channel<T>[] _subscribers = [];
    private long _dropped;
    private long _droppedAtLastLog;
    private long _lastLogAt = long.MinValue / 2;

    /// <param name="capacity">Events a subscriber may fall behind (and events held) before the oldest are dropped.</param>
    /// <param name="logger">Where drops are reported.</param>
    /// <param name="holdFor">Hold events published while nobody subscribes, this long, for the next subscriber; null: drop them.</param>
    public EventBroadcaster(int capacity = 1024, ILogger? logger = null, TimeSpan? holdFor = null)
    {
        _capacity = capacity;
        _logger = logger ?? NullLogger.Instance;
        _holdFor = holdFor;
    }

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    /// <summary>Whether events published with no subscriber are kept for the next one (so they are worth publishing).</summary>
    public bool HoldsEvents => _holdFor is not null;

    /// <summary>Events lost so far: dropped from a full subscriber queue, or held too long or beyond the capacity.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Publish(T item)
    {
        var subscribers = Volatile.Read(ref _subscribers);
        if (subscribers.Length == 0 && _holdFor is not null)
        {
            lock (_gate)
            {
                subscribers = _subscribers; // one may have subscribed meanwhile
                if (subscribers.Length == 0)
                {
                    Hold(item);
                    return;
                }
            }
        }
        foreach (var subscriber in subscribers) subscriber.Writer.TryWrite(item);
    }

    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<T>(new BoundedChannelOptions(_capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => OnDropped(1));
        lock (_gate)
        {
            DiscardExpired();
            while (_held.TryDequeue(out var held)) channel.Writer.TryWrite(held.Item);
            _subscribers = [.. _subscribers, channel];
        }
        return new Subscription(this, channel);
    }

    private void Unsubscribe(Channel<T> channel)
    {
        lock (_gate) _subscribers = _subscribers.Where(c => c != channel).ToArray();
        channel.Writer.TryComplete();
    }

    /// <summary>Call with the gate held.</summary>
    private void Hold(T item)
    {
        DiscardExpired();
        if (_held.Count >= _capacity)
        {
            _held.Dequeue();
            OnDropped(1);
        }
        _held.Enqueue((item, Environment.TickCount64));
    }

    /// <summary>Call with the gate held.</summary>
    private void DiscardExpired()
    {
        if (_holdFor is not { } holdFor) return;
        long oldest = Environment.TickCount64 - (long)holdFor.TotalMilliseconds;
        int discarded = 0;
        while (_held.TryPeek(out var held) && held.At < oldest)
        {
            _held.Dequeue();
            discarded++;
        }
        if (discarded > 0) OnDropped(discarded);
    }

    private void OnDropped(int count)
    {
        long dropped = Interlocked.Add(ref _dropped, count);
        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref _lastLogAt);
        if (now - last < (long)DropLogInterval.TotalMilliseconds || Interlocked.CompareExchange(ref _lastLogAt, now, last) != last) return;
        long since = dropped - Interlocked.Exchange(ref _droppedAtLastLog, dropped);
        _logger.LogWarning("events of type {Type}: dropped {Count} that a subscriber did not read in time ({Total} in all; a subscriber may fall {Capacity} behind)",
            typeof(T).Name, since, dropped, _capacity);
    }

    public sealed class Subscription(EventBroadcaster<T> owner, Channel<T> channel) : IDisposable
    {
        public ChannelReader<T> Reader => channel.Reader;
        public void Dispose() => owner.Unsubscribe(channel);
    }
}
