using System.Buffers.Binary;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Hull.Nri;

/// <summary>
/// containerd/nri's connection multiplexer (pkg/net/multiplex): several byte streams over one socket, each write
/// sent as frames of an 8-byte header (uint32 BE connection id, uint32 BE length) and that many bytes. NRI opens
/// connection 1 for the Plugin service (the runtime is its client) and 2 for the Runtime service (the runtime serves).
/// As upstream: frames for a connection nobody opened are dropped; a connection whose queue of unread frames
/// overflows ends the whole trunk; a frame longer than one ttrpc message plus header ends it too (upstream would
/// try to allocate it).
/// </summary>
public sealed class ConnectionMux : IAsyncDisposable
{
    public const uint PluginServiceConnection = 1;
    public const uint RuntimeServiceConnection = 2;
    public const int HeaderLength = 8;
    /// <summary>upstream's maxPayloadSize: one whole ttrpc message with its header.</summary>
    public const int MaxPayload = Grpc.Ttrpc.TtrpcProtocol.HeaderLength + Grpc.Ttrpc.TtrpcProtocol.MaxMessageLength;
    /// <summary>upstream's readQueueLen: unread frames one connection may have before the trunk is closed.</summary>
    public const int ReadQueueLength = 256;
    // Go's ttrpc reads a connection through a 4096-byte bufio.Reader, and upstream's mux refuses (ENOMEM) a frame
    // larger than the buffer a read offers. Writing as Go's bufio.Writer does keeps every read satisfiable: the
    // first frame of a message at most this long, the rest in one frame.
    private const int GoReaderBuffer = 4096;

    private readonly Stream _trunk;
    // Reads go through a buffer, so a frame's header and data (and often the next frame) come in one read call.
    private readonly BufferedStream _reader;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Dictionary<uint, MuxStream> _connections = new();
    private readonly CancellationTokenSource _closed = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _error;

    /// <param name="trunk">The socket stream; the mux owns it.</param>
    public ConnectionMux(Stream trunk, ILogger logger)
    {
        _trunk = trunk;
        _reader = new BufferedStream(trunk, GoReaderBuffer);
        _logger = logger;
        Reading = Task.Run(ReadLoopAsync);
    }

    /// <summary>Completes when the trunk has ended; <see cref="Error"/> then says why.</summary>
    public Task Reading { get; }

    public string? Error => _error;

    /// <summary>Starts delivering frames (upstream's Unblock): open every connection first so none is dropped.</summary>
    public void Start() => _started.TrySetResult();

    /// <param name="readsInline">
    /// When true a waiting reader continues on the mux's read loop as a frame arrives, sparing a thread hop per
    /// message. Only for readers that never block, such as a ttrpc client's receive loop (it only hands each
    /// response to the waiting call, whose code runs elsewhere); a blocked reader would stall every connection.
    /// </param>
    public Stream Open(uint id, bool readsInline = false)
    {
        if (id == 0) throw new ArgumentOutOfRangeException(nameof(id), "connection id 0 is reserved");
        lock (_connections)
        {
            if (!_connections.TryGetValue(id, out var connection))
                _connections[id] = connection = new MuxStream(this, id, readsInline);
            return connection;
        }
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[HeaderLength];
        try
        {
            await _started.Task.WaitAsync(_closed.Token).ConfigureAwait(false);
            while (true)
            {
                int read = await _reader.ReadAtLeastAsync(header, HeaderLength, throwOnEndOfStream: false, _closed.Token).ConfigureAwait(false);
                if (read == 0) break;
                if (read < HeaderLength) throw new EndOfStreamException($"trunk ended inside a frame header ({read} of {HeaderLength} bytes)");
                uint id = BinaryPrimitives.ReadUInt32BigEndian(header);
                uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
                if (length > MaxPayload)
                    throw new InvalidDataException($"frame of {length} bytes for connection {id} exceeds the maximum of {MaxPayload}");
                var payload = new byte[length];
                if (length > 0)
                {
                    read = await _reader.ReadAtLeastAsync(payload, payload.Length, throwOnEndOfStream: false, _closed.Token).ConfigureAwait(false);
                    if (read < payload.Length) throw new EndOfStreamException($"trunk ended inside a frame ({read} of {length} bytes for connection {id})");
                }
                MuxStream? connection;
                lock (_connections) _connections.TryGetValue(id, out connection);
                if (connection is null)
                {
                    _logger.LogDebug("NRI mux: dropping {Length} bytes for unopened connection {Id}", length, id);
                    continue;
                }
                if (!connection.Incoming.Writer.TryWrite(payload))
                    throw new InvalidDataException($"failed to queue payload for reading on connection {id}");
            }
            _error ??= "connection closed by peer";
        }
        catch (OperationCanceledException)
        {
            _error ??= "closed";
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ObjectDisposedException)
        {
            _error ??= e.Message;
        }
        await CloseAsync().ConfigureAwait(false);
    }

    private async Task WriteAsync(uint id, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_error is { } error) throw new IOException($"NRI connection closed: {error}");
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            int first = Math.Min(data.Length, GoReaderBuffer);
            await WriteFrameAsync(id, data[..first], cancellationToken).ConfigureAwait(false);
            for (var rest = data[first..]; !rest.IsEmpty;)
            {
                int size = Math.Min(rest.Length, MaxPayload);
                await WriteFrameAsync(id, rest[..size], cancellationToken).ConfigureAwait(false);
                rest = rest[size..];
            }
            await _trunk.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _error ??= e.Message;
            throw new IOException($"NRI connection closed: {e.Message}", e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task WriteFrameAsync(uint id, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var frame = new byte[HeaderLength + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, id);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)data.Length);
        data.CopyTo(frame.AsMemory(HeaderLength));
        await _trunk.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
    }

    private async Task CloseAsync()
    {
        _error ??= "closed";
        _started.TrySetResult();
        _closed.Cancel();
        lock (_connections)
            foreach (var connection in _connections.Values) connection.Incoming.Writer.TryComplete();
        await _trunk.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync().ConfigureAwait(false);
        await Reading.ConfigureAwait(false);
    }

    /// <summary>One multiplexed connection as a byte stream (reads may return part of a frame).</summary>
    private sealed class MuxStream(ConnectionMux mux, uint id, bool readsInline) : Stream
    {
        public Channel<byte[]> Incoming { get; } = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(ReadQueueLength)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = readsInline,
        });

        private ReadOnlyMemory<byte> _current;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_current.IsEmpty)
            {
                if (!await Incoming.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return 0;
                if (Incoming.Reader.TryRead(out var next)) _current = next;
            }
            int n = Math.Min(buffer.Length, _current.Length);
            _current[..n].CopyTo(buffer);
            _current = _current[n..];
            return n;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            new(mux.WriteAsync(id, buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override void Flush() { }
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            // Closing one connection closes the plugin's whole NRI connection (both services go with it).
            if (disposing) _ = mux.CloseAsync();
            base.Dispose(disposing);
        }
    }
}
