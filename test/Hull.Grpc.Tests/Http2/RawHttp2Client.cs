using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Google.Protobuf;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;

namespace Hull.Grpc.Tests.Http2;

/// <summary>One frame as received by <see cref="RawHttp2Client"/>.</summary>
internal sealed record Frame(FrameHeader Header, byte[] Payload)
{
    public FrameType Type => Header.Type;
    public int StreamId => Header.StreamId;
    public bool Has(FrameFlags flag) => Header.Has(flag);

    /// <summary>The error code of a RST_STREAM or GOAWAY frame.</summary>
    public Http2ErrorCode ErrorCode => Type switch
    {
        FrameType.RstStream => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload),
        FrameType.GoAway => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload.AsSpan(4)),
        _ => throw new InvalidOperationException($"{Type} frame has no error code"),
    };

    public int LastStreamId => (int)(BinaryPrimitives.ReadUInt32BigEndian(Payload) & 0x7FFF_FFFF);
    public string DebugData => Encoding.UTF8.GetString(Payload.AsSpan(8));

    public override string ToString() => Type switch
    {
        FrameType.GoAway => $"GOAWAY(last={LastStreamId}, {ErrorCode}, \"{DebugData}\")",
        FrameType.RstStream => $"RST_STREAM(stream={StreamId}, {ErrorCode})",
        _ => $"{Type}(stream={StreamId}, flags={Header.Flags}, length={Header.Length})",
    };
}

/// <summary>What the client saw on one stream.</summary>
internal sealed class StreamResult
{
    public List<HeaderField>? Headers { get; set; }
    public List<HeaderField>? Trailers { get; set; }
    public MemoryStream Data { get; } = new();
    public List<int> DataFrameLengths { get; } = new();
    public Http2ErrorCode? ResetCode { get; set; }
    public bool Ended { get; set; }
    public bool Done => Ended || ResetCode is not null;

    public string? Header(string name) => Headers?.FirstOrDefault(h => h.Name == name).Value;

    /// <summary>grpc-status from the trailers, or from the headers of a trailers-only response.</summary>
    public StatusCode? GrpcStatus
    {
        get
        {
            var value = (Trailers ?? Headers)?.FirstOrDefault(h => h.Name == GrpcProtocol.StatusTrailer).Value;
            return value is null ? null : (StatusCode)int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    public string? GrpcMessageRaw => (Trailers ?? Headers)?.FirstOrDefault(h => h.Name == GrpcProtocol.MessageTrailer).Value;

    /// <summary>The length-prefixed messages of the response body.</summary>
    public List<byte[]> Messages()
    {
        var result = new List<byte[]>();
        var bytes = Data.ToArray().AsSpan();
        while (bytes.Length >= GrpcProtocol.MessagePrefixLength)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes[1..]);
            result.Add(bytes.Slice(GrpcProtocol.MessagePrefixLength, length).ToArray());
            bytes = bytes[(GrpcProtocol.MessagePrefixLength + length)..];
        }
        Assert.True(bytes.IsEmpty, "response body ends inside a message");
        return result;
    }

    public T Message<T>() where T : IMessage<T>, new()
    {
        var messages = Messages();
        Assert.Single(messages);
        var message = new T();
        message.MergeFrom(messages[0]);
        return message;
    }
}

/// <summary>
/// A hand-driven HTTP/2 client for protocol tests: frames are written byte by byte as the test says,
/// and everything the server sends is read back frame by frame. Every network wait is bounded.
/// </summary>
internal sealed class RawHttp2Client : IAsyncDisposable
{
    /// <summary>Bound on every wait for the server; generous because CI machines can be very busy.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    public const string VersionPath = "/runtime.v1.RuntimeService/Version";
    public const string EventsPath = "/runtime.v1.RuntimeService/GetContainerEvents";

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly HpackDecoder _decoder = new();
    private readonly Dictionary<int, StreamResult> _results = new();
    private readonly Channel<Frame> _frames = Channel.CreateUnbounded<Frame>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Task _pump;
    private List<byte>? _headerBlock;
    private FrameHeader _headerBlockStart;

    private RawHttp2Client(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _pump = Task.Run(PumpAsync);
    }

    private volatile bool _stopReading;

    /// <summary>Stops taking bytes off the socket (after the frame being read), so the server's writes back up.</summary>
    public void StopReading() => _stopReading = true;

    public HpackEncoder Encoder { get; } = new();
    /// <summary>Frames received so far, in order.</summary>
    public List<Frame> Received { get; } = new();
    /// <summary>SETTINGS the server sent in its preface.</summary>
    public Dictionary<SettingId, uint> ServerSettings { get; } = new();
    /// <summary>Send WINDOW_UPDATEs for received DATA so large responses flow.</summary>
    public bool AutoWindowUpdate { get; set; } = true;
    public bool AutoPingAck { get; set; }
    public Frame? GoAway { get; private set; }
    public bool Closed { get; private set; }

    public static async Task<RawHttp2Client> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint).WaitAsync(Timeout);
            return new RawHttp2Client(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Preface and SETTINGS; waits for the server's SETTINGS and acknowledges them.</summary>
    public async Task HandshakeAsync(params (SettingId Id, uint Value)[] settings)
    {
        await SendPrefaceAsync();
        await SendSettingsAsync(settings);
        foreach (var (id, value) in settings)
            if (id == SettingId.HeaderTableSize) _decoder.MaxDynamicTableSize = (int)value;
        var first = await ReadFrameAsync() ?? throw new Xunit.Sdk.XunitException("connection closed before the server's SETTINGS");
        Assert.Equal(FrameType.Settings, first.Type);
        Assert.False(first.Has(FrameFlags.Ack));
        await WriteFrameAsync(FrameType.Settings, FrameFlags.Ack, 0, []);
    }

    public Task SendPrefaceAsync() => SendRawAsync(Http2Limits.ClientPreface.ToArray());

    public Task SendSettingsAsync(params (SettingId Id, uint Value)[] settings)
    {
        var payload = new byte[settings.Length * 6];
        for (int i = 0; i < settings.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(i * 6), (ushort)settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(i * 6 + 2), settings[i].Value);
        }
        return WriteFrameAsync(FrameType.Settings, FrameFlags.None, 0, payload);
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes).AsTask().WaitAsync(Timeout);
        await _stream.FlushAsync().WaitAsync(Timeout);
    }

    /// <summary>Automatic replies (window updates, PING ACKs) race the server closing the connection; that is not an error.</summary>
    private async Task TrySendRawAsync(byte[] bytes)
    {
        try { await SendRawAsync(bytes); }
        catch (IOException) { }
    }

    public static byte[] FrameBytes(FrameType type, FrameFlags flags, int streamId, ReadOnlySpan<byte> payload) =>
        FrameBytes((byte)type, (byte)flags, streamId, payload);

    public static byte[] FrameBytes(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[Http2Limits.FrameHeaderLength + payload.Length];
        new FrameHeader(payload.Length, (FrameType)type, (FrameFlags)flags, streamId).Write(bytes);
        payload.CopyTo(bytes.AsSpan(Http2Limits.FrameHeaderLength));
        return bytes;
    }

    public Task WriteFrameAsync(FrameType type, FrameFlags flags, int streamId, byte[] payload) =>
        SendRawAsync(FrameBytes(type, flags, streamId, payload));

    public Task SendPingAsync(ulong opaque, bool ack = false)
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(payload, opaque);
        return WriteFrameAsync(FrameType.Ping, ack ? FrameFlags.Ack : FrameFlags.None, 0, payload);
    }

    public Task SendWindowUpdateAsync(int streamId, uint increment) => SendRawAsync(WindowUpdateBytes(streamId, increment));

    private static byte[] WindowUpdateBytes(int streamId, uint increment)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, increment);
        return FrameBytes(FrameType.WindowUpdate, FrameFlags.None, streamId, payload);
    }

    public Task SendRstStreamAsync(int streamId, Http2ErrorCode code)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)code);
        return WriteFrameAsync(FrameType.RstStream, FrameFlags.None, streamId, payload);
    }

    /// <summary>HPACK-encodes a header list with this connection's encoder (keep blocks in send order).</summary>
    public byte[] EncodeHeaders(IReadOnlyList<HeaderField> headers)
    {
        var block = new ArrayBufferWriter<byte>();
        Encoder.Encode(headers, block);
        return block.WrittenSpan.ToArray();
    }

    public Task SendHeadersAsync(int streamId, IReadOnlyList<HeaderField> headers, bool endStream)
    {
        var flags = FrameFlags.EndHeaders | (endStream ? FrameFlags.EndStream : FrameFlags.None);
        return WriteFrameAsync(FrameType.Headers, flags, streamId, EncodeHeaders(headers));
    }

    public static List<HeaderField> RequestHeaders(string path, params HeaderField[] extra)
    {
        var headers = new List<HeaderField>
        {
            new(":method", "POST"),
            new(":scheme", "http"),
            new(":path", path),
            new(":authority", "localhost"),
            new("content-type", GrpcProtocol.ContentType),
            new("te", "trailers"),
        };
        headers.AddRange(extra);
        return headers;
    }

    /// <summary>A gRPC body: one length-prefixed message.</summary>
    public static byte[] GrpcBody(IMessage message, bool compressed = false)
    {
        var body = new byte[GrpcProtocol.MessagePrefixLength + message.CalculateSize()];
        GrpcProtocol.WritePrefix(body, body.Length - GrpcProtocol.MessagePrefixLength, compressed);
        message.WriteTo(body.AsSpan(GrpcProtocol.MessagePrefixLength));
        return body;
    }

    /// <summary>HEADERS then the body in DATA frames of at most 16384 octets, the last with END_STREAM.</summary>
    public async Task SendRequestAsync(int streamId, IReadOnlyList<HeaderField> headers, byte[] body)
    {
        await SendHeadersAsync(streamId, headers, endStream: false);
        int offset = 0;
        do
        {
            int chunk = Math.Min(Http2Limits.DefaultMaxFrameSize, body.Length - offset);
            bool last = offset + chunk == body.Length;
            await WriteFrameAsync(FrameType.Data, last ? FrameFlags.EndStream : FrameFlags.None, streamId, body[offset..(offset + chunk)]);
            offset += chunk;
        } while (offset < body.Length);
    }

    public Task SendUnaryAsync(int streamId, string path, IMessage request, params HeaderField[] extra) =>
        SendRequestAsync(streamId, RequestHeaders(path, extra), GrpcBody(request));

    public Task SendVersionAsync(int streamId, string version, params HeaderField[] extra) =>
        SendUnaryAsync(streamId, VersionPath, new Hull.Api.Cri.VersionRequest { Version = version }, extra);

    public StreamResult Result(int streamId)
    {
        if (!_results.TryGetValue(streamId, out var result)) _results[streamId] = result = new StreamResult();
        return result;
    }

    /// <summary>Reads one frame, or returns null when the server closed the connection.</summary>
    public async Task<Frame?> ReadFrameAsync(TimeSpan? timeout = null)
    {
        if (Closed) return null;
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        Frame frame;
        try
        {
            if (!await _frames.Reader.WaitToReadAsync(cts.Token))
            {
                Closed = true;
                return null;
            }
            frame = await _frames.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"no frame from the server within {timeout ?? Timeout}; received: {Describe()}");
        }
        Received.Add(frame);
        await ObserveAsync(frame);
        return frame;
    }

    // Reads frames off the socket in the background so a timed-out wait never loses half a frame.
    private async Task PumpAsync()
    {
        var header = new byte[Http2Limits.FrameHeaderLength];
        try
        {
            while (!_stopReading)
            {
                int read = await _stream.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false);
                if (read < header.Length) break;
                var parsed = FrameHeader.Parse(header);
                var payload = new byte[parsed.Length];
                await _stream.ReadExactlyAsync(payload);
                await _frames.Writer.WriteAsync(new Frame(parsed, payload));
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException or SocketException) { }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }

    private async Task ObserveAsync(Frame frame)
    {
        switch (frame.Type)
        {
            case FrameType.Settings when !frame.Has(FrameFlags.Ack):
                for (int i = 0; i + 6 <= frame.Payload.Length; i += 6)
                    ServerSettings[(SettingId)BinaryPrimitives.ReadUInt16BigEndian(frame.Payload.AsSpan(i))] =
                        BinaryPrimitives.ReadUInt32BigEndian(frame.Payload.AsSpan(i + 2));
                break;
            case FrameType.Headers:
                Assert.Null(_headerBlock);
                _headerBlockStart = frame.Header;
                _headerBlock = new List<byte>(frame.Payload);
                if (frame.Has(FrameFlags.EndHeaders)) EndHeaderBlock();
                break;
            case FrameType.Continuation:
                Assert.NotNull(_headerBlock);
                Assert.Equal(_headerBlockStart.StreamId, frame.StreamId);
                _headerBlock!.AddRange(frame.Payload);
                if (frame.Has(FrameFlags.EndHeaders)) EndHeaderBlock();
                break;
            case FrameType.Data:
            {
                var result = Result(frame.StreamId);
                result.Data.Write(frame.Payload);
                result.DataFrameLengths.Add(frame.Payload.Length);
                if (frame.Has(FrameFlags.EndStream)) result.Ended = true;
                if (AutoWindowUpdate && frame.Payload.Length > 0)
                {
                    await TrySendRawAsync(WindowUpdateBytes(0, (uint)frame.Payload.Length));
                    if (!result.Ended) await TrySendRawAsync(WindowUpdateBytes(frame.StreamId, (uint)frame.Payload.Length));
                }
                break;
            }
            case FrameType.RstStream:
                Result(frame.StreamId).ResetCode = frame.ErrorCode;
                break;
            case FrameType.GoAway:
                GoAway = frame;
                break;
            case FrameType.Ping when AutoPingAck && !frame.Has(FrameFlags.Ack):
                await TrySendRawAsync(FrameBytes(FrameType.Ping, FrameFlags.Ack, 0, frame.Payload));
                break;
        }
    }

    private void EndHeaderBlock()
    {
        var fields = new List<HeaderField>();
        _decoder.Decode(_headerBlock!.ToArray(), fields);
        _headerBlock = null;
        var result = Result(_headerBlockStart.StreamId);
        if (result.Headers is null) result.Headers = fields;
        else result.Trailers = fields;
        if (_headerBlockStart.Has(FrameFlags.EndStream)) result.Ended = true;
    }

    /// <summary>Reads until the stream ends or is reset; fails if the connection ends first.</summary>
    public async Task<StreamResult> ReadResponseAsync(int streamId, TimeSpan? timeout = null)
    {
        var result = Result(streamId);
        var deadline = DateTime.UtcNow + (timeout ?? Timeout);
        while (!result.Done)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"stream {streamId} did not end in time; received: {Describe()}");
            var frame = await ReadFrameAsync(left);
            if (frame is null) throw new Xunit.Sdk.XunitException($"connection closed before stream {streamId} ended; received: {Describe()}");
            if (frame.Type == FrameType.GoAway && frame.ErrorCode != Http2ErrorCode.NoError)
                throw new Xunit.Sdk.XunitException($"connection error before stream {streamId} ended: {frame}");
        }
        return result;
    }

    /// <summary>Reads until a GOAWAY arrives, asserts its code, then asserts that the server closes the connection.</summary>
    public async Task<Frame> ExpectGoAwayAsync(Http2ErrorCode code, bool thenClosed = true)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (GoAway is null)
        {
            var frame = await ReadFrameAsync(Remaining(deadline));
            if (frame is null) throw new Xunit.Sdk.XunitException($"connection closed without GOAWAY({code}); received: {Describe()}");
        }
        Assert.True(GoAway.ErrorCode == code, $"expected GOAWAY({code}), got {GoAway}");
        if (thenClosed) await ExpectClosedAsync();
        return GoAway;
    }

    /// <summary>Reads until a RST_STREAM for <paramref name="streamId"/>; fails on a connection error or close.</summary>
    public async Task ExpectRstStreamAsync(int streamId, Http2ErrorCode code)
    {
        var result = Result(streamId);
        var deadline = DateTime.UtcNow + Timeout;
        while (result.ResetCode is null)
        {
            var frame = await ReadFrameAsync(Remaining(deadline));
            if (frame is null) throw new Xunit.Sdk.XunitException($"connection closed instead of RST_STREAM({streamId}, {code}); received: {Describe()}");
            if (frame.Type == FrameType.GoAway) throw new Xunit.Sdk.XunitException($"expected RST_STREAM({streamId}, {code}), got {frame}");
        }
        Assert.True(result.ResetCode == code, $"expected RST_STREAM({streamId}, {code}), got {result.ResetCode}");
    }

    /// <summary>Reads (and records) frames until the server closes the connection.</summary>
    public async Task ExpectClosedAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Timeout);
        while (await ReadFrameAsync(Remaining(deadline)) is not null) { }
    }

    /// <summary>Asserts that nothing but connection-level housekeeping arrives for <paramref name="quiet"/>.</summary>
    public async Task<List<Frame>> ReadForAsync(TimeSpan quiet)
    {
        var frames = new List<Frame>();
        var deadline = DateTime.UtcNow + quiet;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var frame = await ReadFrameAsync(Remaining(deadline));
                if (frame is null) break;
                frames.Add(frame);
            }
            catch (TimeoutException) { break; }
        }
        return frames;
    }

    /// <summary>Reads frames until none arrives for <paramref name="quiet"/> (or the connection closes).</summary>
    public async Task<List<Frame>> ReadUntilQuietAsync(TimeSpan quiet)
    {
        var frames = new List<Frame>();
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var frame = await ReadFrameAsync(quiet);
                if (frame is null) break;
                frames.Add(frame);
            }
            catch (TimeoutException) { break; }
        }
        return frames;
    }

    /// <summary>Sends a PING and waits for its ACK: proves the connection is alive and every earlier frame was processed.</summary>
    public async Task PingRoundTripAsync(ulong opaque = 0x0102030405060708)
    {
        await SendPingAsync(opaque);
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var frame = await ReadFrameAsync(Remaining(deadline))
                ?? throw new Xunit.Sdk.XunitException($"connection closed while waiting for PING ACK; received: {Describe()}");
            if (frame.Type == FrameType.GoAway) throw new Xunit.Sdk.XunitException($"connection error while waiting for PING ACK: {frame}");
            if (frame.Type == FrameType.Ping && frame.Has(FrameFlags.Ack) && BinaryPrimitives.ReadUInt64BigEndian(frame.Payload) == opaque) return;
        }
    }

    public string Describe() => string.Join(", ", Received.Select(f => f.ToString()));

    private static TimeSpan Remaining(DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        if (left <= TimeSpan.Zero) throw new TimeoutException("timed out waiting for the server");
        return left;
    }

    public async ValueTask DisposeAsync()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        await _stream.DisposeAsync();
        await _pump.WaitAsync(Timeout);
    }

    /// <summary>Closes the socket abruptly (the server sees the peer go away mid-call).</summary>
    public void Abort()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Dispose();
        Closed = true;
    }
}
