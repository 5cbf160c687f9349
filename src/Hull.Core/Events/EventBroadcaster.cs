using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Hull.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Core.Events;

/// <summary>
/// Fans events out to every live subscriber. Publishing never blocks: a subscriber that falls
/// more than its capacity behind loses its oldest events rather than stalling the runtime; each
/// loss is counted (<c>hull_events_dropped_total</c>) and logged, at most every <see cref="DropLogInterval"/> per subscriber.
/// </summary>
public sealed class EventBroadcaster<T>
{
    internal static readonly TimeSpan DropLogInterval = TimeSpan.FromSeconds(10);
    private readonly object _gate = new();
    private readonly int _capacity;
    private readonly ILogger _logger;
    private Subscription[] _subscribers = [];

    public EventBroadcaster(int capacity = 1024, ILogger? logger = null)
    {
        _capacity = capacity;
        _logger = logger ?? NullLogger.Instance;
    }

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    public void Publish(T item)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
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
        lock (_gate) _subscribers = [.. _subscribers, subscription];
        return subscription;
    }

    private void Unsubscribe(Subscription subscription)
    {
        lock (_gate) _subscribers = _subscribers.Where(c => c != subscription).ToArray();
        subscription.Writer.TryComplete();
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
