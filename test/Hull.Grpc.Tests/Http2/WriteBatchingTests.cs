using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Xunit;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Each flush of the connection's output is a <c>sendto</c>. grpc-go clients send a PING after every response (BDP
/// estimation), usually in the same write as their next request; its ACK goes out with that request's response.
/// </summary>
public sealed class WriteBatchingTests
{
    private const ulong PingPayload = 0x0123_4567_89AB_CDEF;

    [Fact]
    public async Task A_ping_that_comes_with_a_request_is_acknowledged_in_the_same_write_as_the_response()
    {
        await using var connection = await TestConnection.StartAsync(stream =>
            stream.SendAsync([new(":status", "200")], new byte[] { 1, 2, 3 }, [new("grpc-status", "0")]).AsTask());

        int flushesBefore = connection.Output.Flushes;
        await connection.SendAsync([.. Ping(), .. connection.Request(streamId: 1)]);
        var frames = await connection.ReadUntilAsync(f => f.Type == FrameType.Headers && f.Has(FrameFlags.EndStream));

        Assert.Contains(frames, f => f.Type == FrameType.Ping && f.Has(FrameFlags.Ack));
        Assert.Equal(1, connection.Output.Flushes - flushesBefore);
    }

    [Fact]
    public async Task A_ping_is_not_held_back_by_a_handler_that_has_not_answered()
    {
        var answer = new TaskCompletionSource();
        await using var connection = await TestConnection.StartAsync(async stream =>
        {
            await answer.Task;
            await stream.SendAsync([new(":status", "200")], new byte[] { 1 }, [new("grpc-status", "0")]);
        });

        await connection.SendAsync([.. Ping(), .. connection.Request(streamId: 1)]);
        var frames = await connection.ReadUntilAsync(f => f.Type == FrameType.Ping && f.Has(FrameFlags.Ack));
        Assert.DoesNotContain(frames, f => f.Type == FrameType.Headers);

        answer.SetResult();
        await connection.ReadUntilAsync(f => f.Type == FrameType.Headers && f.Has(FrameFlags.EndStream));
    }

    [Fact]
    public async Task A_ping_alone_is_acknowledged_at_once()
    {
        await using var connection = await TestConnection.StartAsync(_ => Task.CompletedTask);
        await connection.SendAsync(Ping());
        var frames = await connection.ReadUntilAsync(f => f.Type == FrameType.Ping && f.Has(FrameFlags.Ack));
        Assert.Equal(PingPayload, BinaryPrimitives.ReadUInt64BigEndian(frames[^1].Payload));
    }

    private static byte[] Ping()
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(payload, PingPayload);
        return RawHttp2Client.FrameBytes(FrameType.Ping, FrameFlags.None, 0, payload);
    }

    /// <summary>An <see cref="Http2Connection"/> over in-memory pipes, past the preface and SETTINGS exchange.</summary>
    private sealed class TestConnection : IAsyncDisposable
    {
        private readonly Pipe _toServer = new();
        private readonly Pipe _fromServer = new();
        private readonly HpackEncoder _encoder = new();
        private readonly Task _run;

        private TestConnection(Http2RequestHandler handler)
        {
            Output = new CountingWriter(_fromServer.Writer);
            var connection = new Http2Connection(new DuplexPipe(_toServer.Reader, Output), new Http2ServerOptions(), 64 * 1024, handler);
            _run = connection.RunAsync();
        }

        public CountingWriter Output { get; }

        public static async Task<TestConnection> StartAsync(Http2RequestHandler handler)
        {
            var connection = new TestConnection(handler);
            await connection.SendAsync([.. Http2Limits.ClientPreface.ToArray(), .. RawHttp2Client.FrameBytes(FrameType.Settings, FrameFlags.None, 0, [])]);
            await connection.ReadUntilAsync(f => f.Type == FrameType.Settings && f.Has(FrameFlags.Ack));
            return connection;
        }

        public async Task SendAsync(byte[] bytes) => await _toServer.Writer.WriteAsync(bytes);

        /// <summary>A unary request: HEADERS, then DATA with END_STREAM.</summary>
        public byte[] Request(int streamId)
        {
            var block = new ArrayBufferWriter<byte>();
            _encoder.Encode(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), block);
            return
            [
                .. RawHttp2Client.FrameBytes(FrameType.Headers, FrameFlags.EndHeaders, streamId, block.WrittenSpan),
                .. RawHttp2Client.FrameBytes(FrameType.Data, FrameFlags.EndStream, streamId, new byte[5]),
            ];
        }

        /// <summary>Frames the server wrote, up to and including the first that matches.</summary>
        public async Task<List<Frame>> ReadUntilAsync(Func<Frame, bool> last)
        {
            var frames = new List<Frame>();
            using var timeout = new CancellationTokenSource(RawHttp2Client.Timeout);
            while (true)
            {
                var result = await _fromServer.Reader.ReadAsync(timeout.Token);
                var buffer = result.Buffer;
                bool found = false;
                while (!found && FrameReader.TryReadFrame(ref buffer, Http2Limits.DefaultMaxFrameSize, out var header, out var payload))
                {
                    frames.Add(new Frame(header, payload.ToArray()));
                    found = last(frames[^1]);
                }
                _fromServer.Reader.AdvanceTo(buffer.Start, found ? buffer.Start : buffer.End);
                if (found) return frames;
                Assert.False(result.IsCompleted, "the server closed the connection");
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _toServer.Writer.CompleteAsync();
            await _run.WaitAsync(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>Counts the flushes that had bytes to send: one <c>sendto</c> each on a socket.</summary>
    private sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        private int _flushes;

        public int Flushes => Volatile.Read(ref _flushes);

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            if (inner.UnflushedBytes > 0) Interlocked.Increment(ref _flushes);
            return inner.FlushAsync(cancellationToken);
        }

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }
}
