using System.Threading.Channels;
using Hull.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Core.Events;

/// <summary>
/// Fans events out to every live subscriber. Publishing never blocks: a subscriber that falls
/// more than its capacity behind loses its oldest events rather than stalling the runtime; each
/// loss is counted (<see cref="Dropped"/>, <c>hull_events_dropped_total</c>) and logged, at most every
/// <see cref="DropLogInterval"/> per subscriber.
/// With <c>holdFor</c> set, events published while nobody subscribes are held (up to the capacity,
/// for that long) and handed to the next subscriber, as containerd's CRI event queue does: a kubelet
/// that reconnects after a restart still learns what changed meanwhile.
/// </summary>
public sealed class EventBroadcaster<T>
{
    internal static readonly TimeSpan DropLogInterval = TimeSpan.FromSeconds(10);
    private static readonly KeyValuePair<string, object?> HeldTag = new("subscriber", "held");
    private readonly object _gate = new();
    private readonly int _capacity;
    private readonly ILogger _logger;
    private readonly TimeSpan? _holdFor;
    private readonly Queue<(T Item, long At)> _held = new();
    private Subscription[] _subscribers = [];
    private long _dropped;

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

    /// <summary>Events lost so far, over all subscribers: dropped from a full subscriber queue, or held too long or beyond the capacity.</summary>
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
        foreach (var subscriber in subscribers)
        {
            subscriber.Writer.TryWrite(item);
            CoreTelemetry.EventsSent.Add(1, subscriber.KindTag);
        }
    }

    /// <param name="kind">What kind of subscriber this is (such as <c>cri</c> for GetContainerEvents): the metric label, so a
    /// name fixed in code, never a per-client value.</param>
    public Subscription Subscribe(string kind = "unnamed")
    {
        var subscription = new Subscription(this, kind, _capacity);
        lock (_gate)
        {
            DiscardExpired();
            while (_held.TryDequeue(out var held)) subscription.Writer.TryWrite(held.Item);
            _subscribers = [.. _subscribers, subscription];
        }
        return subscription;
    }

    private void Unsubscribe(Subscription subscription)
    {
        lock (_gate) _subscribers = _subscribers.Where(c => c != subscription).ToArray();
        subscription.Writer.TryComplete();
    }

    /// <summary>Call with the gate held.</summary>
    private void Hold(T item)
    {
        DiscardExpired();
        if (_held.Count >= _capacity)
        {
            _held.Dequeue();
            OnHeldDropped(1);
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
        if (discarded > 0) OnHeldDropped(discarded);
    }

    private void OnHeldDropped(int count)
    {
        Interlocked.Add(ref _dropped, count);
        CoreTelemetry.EventsDropped.Add(count, HeldTag);
        // Held events only expire with nobody listening (no kubelet connected): worth a line, not one per event.
        _logger.LogDebug("events of type {Type}: {Count} held for a subscriber were dropped (too old or more than {Capacity})",
            typeof(T).Name, count, _capacity);
    }

    public sealed class Subscription : IDisposable
    {
        private readonly EventBroadcaster<T> _owner;
        private readonly Channel<T> _channel;
        private long _dropped;
        private long _droppedLogged;
        private long _loggedAt = long.MinValue / 2;

        internal Subscription(EventBroadcaster<T> owner, string kind, int capacity)
        {
            _owner = owner;
            Kind = kind;
            KindTag = new KeyValuePair<string, object?>("subscriber", kind);
            _channel = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
            }, _ => OnDropped());
        }

        public string Kind { get; }
        internal KeyValuePair<string, object?> KindTag { get; }
        internal ChannelWriter<T> Writer => _channel.Writer;
        public ChannelReader<T> Reader => _channel.Reader;

        /// <summary>Events this subscriber lost so far.</summary>
        public long Dropped => Interlocked.Read(ref _dropped);

        public void Dispose() => _owner.Unsubscribe(this);

        private void OnDropped()
        {
            long dropped = Interlocked.Increment(ref _dropped);
            Interlocked.Increment(ref _owner._dropped);
            CoreTelemetry.EventsDropped.Add(1, KindTag);
            long now = Environment.TickCount64;
            long last = Interlocked.Read(ref _loggedAt);
            if (now - last < (long)DropLogInterval.TotalMilliseconds || Interlocked.CompareExchange(ref _loggedAt, now, last) != last) return;
            long since = dropped - Interlocked.Exchange(ref _droppedLogged, dropped);
            _owner._logger.LogWarning("event subscriber {Kind} is more than {Capacity} events behind: dropped {Dropped} of its oldest events ({Total} in all)",
                Kind, _owner._capacity, since, dropped);
        }
    }
}
