using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Hull.Grpc.Http2;

/// <summary>
/// A connection's socket as a duplex pipe, driven by blocking calls: a thread of its own receives into the input
/// pipe and runs the reader's continuation (the HTTP/2 read loop, and the handler it starts inline) itself, and a
/// flush is one blocking <c>send</c> on the writer's thread.
/// </summary>
/// <remarks>
/// Why not <see cref="NetworkStream"/> and the socket's async methods: .NET's socket engine hands every epoll event
/// to a thread-pool worker, the EPOLLOUT after each send included, and a worker that finds work wakes another.
/// With one gRPC stream of back-to-back unary calls that was about 9 context switches and 110 µs of server CPU per
/// call. A socket that only ever sees blocking calls is never registered with epoll: one wake per request.
/// <para>
/// A handler that blocks must still not hold up its connection: if the receiving thread has been inside the read loop
/// or the handlers it runs for <see cref="ReceiverWatch.HandOverAfter"/>, <see cref="ReceiverWatch"/> starts a new
/// receiving thread and tells the connection (<see cref="HandedOver"/>), which sends the handlers the held thread
/// has not started to the thread pool; the held thread ends when it returns. Measured at 8 streams, running all of
/// a read's handlers on this thread instead of all but one on the pool took server CPU from 33 to 17 µs per call.
/// </para>
/// </remarks>
internal sealed class SocketTransport : IDuplexPipe, IHandsOverReceiving, IDisposable
{
    private const int ReceiveSize = 16 * 1024;
    // Set by a receiving thread around its flush: the transport and that thread's generation.
    [ThreadStatic] private static SocketTransport? t_flushing;
    [ThreadStatic] private static int t_generation;

    private readonly Socket _socket;
    private readonly Pipe _input;
    private readonly InputReader _reader;
    private readonly SendWriter _output;
    // Bytes the receiving thread may put in the pipe after the reader last asked for input (the read loop takes every
    // complete frame before it asks again); past it the thread waits, so a read loop that waits on a write caps the backlog.
    private readonly long _backlogLimit;
    private long _sinceRead;
    private int _receiverWaiting;
    private readonly ManualResetEventSlim _readerAsked = new(false);
    // The receiving thread's generation << 1, | 1 while it runs the reader's continuation (since _busySince).
    private int _receiver;
    private long _busySince;
    private int _disposed;

    public SocketTransport(Socket socket, int maxFrameSize)
    {
        _socket = socket;
        _backlogLimit = Math.Max(1L << 20, 2L * (maxFrameSize + Http2Limits.FrameHeaderLength));
        // Never paused: the backlog limit above does that job, and a flush that cannot be pending is what lets a new
        // receiving thread write to the pipe while the old one is still inside its flush.
        _input = new Pipe(new PipeOptions(pauseWriterThreshold: 0, readerScheduler: new ReceiverScheduler(this),
            writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
        _reader = new InputReader(this, _input.Reader);
        _output = new SendWriter(this);
    }

    public PipeReader Input => _reader;
    public PipeWriter Output => _output;
    public Action? HandedOver { get; set; }

    /// <summary>Starts receiving.</summary>
    public void Start()
    {
        ReceiverWatch.Add(this);
        StartReceiver(0);
    }

    private void StartReceiver(int generation) =>
        new Thread(static s => { var (t, g) = ((SocketTransport, int))s!; t.Receive(g); }) { IsBackground = true, Name = "HTTP/2 receive" }
            .Start((this, generation));

    /// <summary>
    /// Called by <see cref="ReceiverWatch"/>: if the receiving thread has been busy since before <paramref name="cutoff"/>,
    /// a new one takes over (<paramref name="handedOver"/>). Returns true if it is busy but not for that long yet.
    /// </summary>
    internal bool HandOverIfBusySince(long cutoff, out bool handedOver)
    {
        handedOver = false;
        int state = Volatile.Read(ref _receiver);
        if ((state & 1) == 0) return false;
        if (Volatile.Read(ref _busySince) > cutoff) return true;
        int next = (state >> 1) + 1;
        if (Interlocked.CompareExchange(ref _receiver, next << 1, state) != state) return false;
        StartReceiver(next);
        handedOver = true;
        return false;
    }

    private void Receive(int generation)
    {
        int idle = generation << 1, busy = idle | 1;
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                int received = _socket.Receive(writer.GetSpan(ReceiveSize));
                if (received == 0) break;
                writer.Advance(received);
                Interlocked.Add(ref _sinceRead, received);
                // The reader's continuation runs in here, through ReceiverScheduler, which marks the thread busy.
                t_flushing = this;
                t_generation = generation;
                var result = writer.FlushAsync().GetAwaiter().GetResult();
                t_flushing = null;
                int state = Interlocked.CompareExchange(ref _receiver, idle, busy);
                if (state != busy && state != idle) return; // a newer thread receives now: it owns the socket and the pipe
                if (result.IsCompleted || result.IsCanceled) break;
                WaitForReader();
            }
        }
        catch (Exception e)
        {
            // A reset, or the socket closed by Dispose: the reader sees the end of its input either way. Anything else
            // ends the connection the same way rather than the daemon (an exception on this thread would).
            if (Volatile.Read(ref _disposed) == 0) error = new IOException($"receive failed: {e.Message}", e);
        }
        finally
        {
            t_flushing = null;
        }
        writer.Complete(error);
    }

    private void MarkBusy()
    {
        // The time first: the watch reads the flag, then the time.
        Volatile.Write(ref _busySince, Environment.TickCount64);
        int idle = t_generation << 1;
        if (Interlocked.CompareExchange(ref _receiver, idle | 1, idle) == idle) ReceiverWatch.Arm();
    }

    private void WaitForReader()
    {
        while (Volatile.Read(ref _sinceRead) > _backlogLimit && Volatile.Read(ref _disposed) == 0)
        {
            _readerAsked.Reset();
            Interlocked.Exchange(ref _receiverWaiting, 1);
            if (Volatile.Read(ref _sinceRead) <= _backlogLimit) break;
            _readerAsked.Wait();
        }
        Volatile.Write(ref _receiverWaiting, 0);
    }

    private void OnReaderAsks()
    {
        Interlocked.Exchange(ref _sinceRead, 0);
        if (Volatile.Read(ref _receiverWaiting) != 0) _readerAsked.Set();
    }

    private void Send(ReadOnlySpan<byte> data)
    {
        try
        {
            while (!data.IsEmpty) data = data[_socket.Send(data)..];
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            throw new IOException($"send failed: {e.Message}", e);
        }
    }

    /// <summary>Ends a send or receive in progress, whatever thread makes it (Linux wakes them on shutdown).</summary>
    private void Shutdown()
    {
        try { _socket.Shutdown(SocketShutdown.Both); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        ReceiverWatch.Remove(this);
        Shutdown();
        _socket.Dispose();
        _readerAsked.Set();
    }

    /// <summary>Runs reader continuations inline; on the receiving thread, inside its flush, it marks that thread busy.</summary>
    private sealed class ReceiverScheduler(SocketTransport transport) : PipeScheduler
    {
        public override void Schedule(Action<object?> action, object? state)
        {
            if (t_flushing == transport) transport.MarkBusy();
            action(state);
        }
    }

    /// <summary>The pipe's reader, telling the transport each time the read loop asks for input.</summary>
    private sealed class InputReader(SocketTransport transport, PipeReader inner) : PipeReader
    {
        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            transport.OnReaderAsks();
            return inner.ReadAsync(cancellationToken);
        }

        public override bool TryRead(out ReadResult result)
        {
            transport.OnReaderAsks();
            return inner.TryRead(out result);
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);
        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);
        public override void CancelPendingRead() => inner.CancelPendingRead();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    /// <summary>Buffers frames until a flush sends them with one blocking <c>send</c>; the frame writer's lock orders its callers.</summary>
    private sealed class SendWriter(SocketTransport transport) : PipeWriter
    {
        // Kept across flushes up to this size; a bigger one (a large response) is dropped once it is sent.
        private const int RetainedCapacity = 64 * 1024;
        private ArrayBufferWriter<byte> _buffer = new(4096);
        private volatile bool _cancelled;
        private bool _completed;

        public override bool CanGetUnflushedBytes => true;
        public override long UnflushedBytes => _buffer.WrittenCount;

        public override void Advance(int bytes) => _buffer.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => _buffer.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => _buffer.GetSpan(sizeHint);

        /// <summary>The peer stopped reading: a blocked send cannot finish, so the socket is shut down under it.</summary>
        public override void CancelPendingFlush()
        {
            _cancelled = true;
            transport.Shutdown();
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            if (_completed) return new(new FlushResult(isCanceled: false, isCompleted: true));
            if (_cancelled) return new(new FlushResult(isCanceled: true, isCompleted: false));
            try
            {
                transport.Send(_buffer.WrittenSpan);
            }
            catch (IOException) when (_cancelled)
            {
                return new(new FlushResult(isCanceled: true, isCompleted: false));
            }
            finally
            {
                if (_buffer.Capacity > RetainedCapacity) _buffer = new ArrayBufferWriter<byte>(4096);
                else _buffer.ResetWrittenCount();
            }
            return new(new FlushResult(isCanceled: false, isCompleted: false));
        }

        public override void Complete(Exception? exception = null)
        {
            if (_completed) return;
            // As a stream's pipe writer does: what is still buffered goes out, unless the writer failed.
            try
            {
                if (exception is null && _buffer.WrittenCount > 0 && !_cancelled) FlushAsync().GetAwaiter().GetResult();
            }
            finally { _completed = true; }
        }
    }
}

/// <summary>
/// Hands a connection's receiving over to a new thread when the one it has is held up in the read loop or in a
/// handler run inline (a handler that blocks before its first await, say). One timer for the process, armed only
/// while some receiving thread is busy.
/// </summary>
internal static class ReceiverWatch
{
    public static readonly TimeSpan HandOverAfter = TimeSpan.FromMilliseconds(10);
    private static readonly List<SocketTransport> Transports = new();
    private static readonly Timer Timer = new(_ => Check(), null, Timeout.Infinite, Timeout.Infinite);
    private static int _armed;

    public static void Add(SocketTransport transport) { lock (Transports) Transports.Add(transport); }
    public static void Remove(SocketTransport transport) { lock (Transports) Transports.Remove(transport); }

    public static void Arm()
    {
        if (Volatile.Read(ref _armed) == 0 && Interlocked.Exchange(ref _armed, 1) == 0) Timer.Change(HandOverAfter, Timeout.InfiniteTimeSpan);
    }

    private static void Check()
    {
        // Disarmed before the scan: a thread that turns busy after it arms the timer again itself.
        Interlocked.Exchange(ref _armed, 0);
        long cutoff = Environment.TickCount64 - (long)HandOverAfter.TotalMilliseconds;
        bool busy = false;
        List<SocketTransport>? handedOver = null;
        lock (Transports)
            foreach (var transport in Transports)
            {
                busy |= transport.HandOverIfBusySince(cutoff, out bool handed);
                if (handed) (handedOver ??= new()).Add(transport);
            }
        if (busy) Arm();
        if (handedOver is not null)
            foreach (var transport in handedOver) transport.HandedOver?.Invoke();
    }
}
