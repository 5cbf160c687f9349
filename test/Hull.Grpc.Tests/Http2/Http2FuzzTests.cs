using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Reflection;
using Hull.Api.Cri;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Seeded fuzzing of the server connection: random bytes and mutated valid frame sequences. The server
/// must never throw out of its loops, must answer with well-formed frames (GOAWAY/RST_STREAM with a
/// sensible code, or normal responses), and must go on serving.
/// </summary>
public class Http2FuzzTests
{
    private static readonly Http2ErrorCode[] ConnectionErrorCodes =
    [
        Http2ErrorCode.ProtocolError, Http2ErrorCode.FrameSizeError, Http2ErrorCode.CompressionError,
        Http2ErrorCode.FlowControlError, Http2ErrorCode.StreamClosed, Http2ErrorCode.EnhanceYourCalm,
    ];

    private static readonly Http2ErrorCode[] StreamErrorCodes =
    [
        Http2ErrorCode.NoError, Http2ErrorCode.ProtocolError, Http2ErrorCode.FrameSizeError, Http2ErrorCode.FlowControlError,
        Http2ErrorCode.StreamClosed, Http2ErrorCode.RefusedStream,
    ];

    // Fixed seeds keep CI reproducible; HULL_FUZZ_SEED / HULL_FUZZ_RUNS explore further locally.
    private static int Seed(int fixedSeed) =>
        int.TryParse(Environment.GetEnvironmentVariable("HULL_FUZZ_SEED"), out int seed) ? seed : fixedSeed;

    private static int Runs(int fixedRuns) =>
        int.TryParse(Environment.GetEnvironmentVariable("HULL_FUZZ_RUNS"), out int runs) ? runs : fixedRuns;

    // ---- in-memory: Http2Connection over pipes, driven by the real gRPC dispatcher ----

    private static Http2RequestHandler GrpcHandler(GrpcServer server)
    {
        var method = typeof(GrpcServer).GetMethod("HandleAsync", BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new InvalidOperationException("GrpcServer.HandleAsync not found; update the fuzz harness");
        return method.CreateDelegate<Http2RequestHandler>(server);
    }

    /// <summary>What the server said on one fuzzed connection.</summary>
    private sealed class Outcome
    {
        public List<FrameHeader> Frames { get; } = new();
        public Http2ErrorCode? GoAway { get; set; }
        public List<(int Stream, Http2ErrorCode Code)> Resets { get; } = new();
        public int Responses { get; set; }
        public bool PingAcked { get; set; }
    }

    /// <summary>
    /// Feeds <paramref name="input"/> to a fresh connection, then a PING, and reads everything the server writes
    /// until it acknowledges that PING or closes; then ends the input and waits for the connection to finish.
    /// </summary>
    private static async Task<Outcome> RunInMemoryAsync(byte[] input, Http2ServerOptions options, Http2RequestHandler handler, ulong pingPayload = 0xF00D)
    {
        var toServer = new Pipe();
        var fromServer = new Pipe();
        var connection = new Http2Connection(new DuplexPipe(toServer.Reader, fromServer.Writer), options, 64 * 1024 + 5, handler);
        var run = connection.RunAsync();
        var outcome = new Outcome();
        var reader = ReadServerOutputAsync(fromServer.Reader, outcome, toServer.Writer, pingPayload);

        await toServer.Writer.WriteAsync(input);
        var ping = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(ping, pingPayload);
        await toServer.Writer.WriteAsync(RawHttp2Client.FrameBytes(FrameType.Ping, FrameFlags.None, 0, ping));

        // Either the PING is answered (everything before it was processed), the server closes, or the input
        // ended inside a frame and the server is waiting for more: give that a moment, then hang up.
        var settle = Task.Delay(50);
        while (!outcome.PingAcked && !reader.IsCompleted && !settle.IsCompleted)
            await Task.WhenAny(reader, settle, Task.Delay(2));
        if (outcome.PingAcked) await Task.Delay(1); // let quick handlers answer
        if (reader.IsFaulted) await reader; // report what was wrong with the output first
        await toServer.Writer.CompleteAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(5)); // must end, and must not throw
        await reader.WaitAsync(TimeSpan.FromSeconds(5));
        return outcome;
    }

    private static async Task ReadServerOutputAsync(PipeReader output, Outcome outcome, PipeWriter toServer, ulong pingPayload)
    {
        var decoder = new HpackDecoder();
        List<byte>? block = null;
        bool first = true;
        while (true)
        {
            var result = await output.ReadAsync();
            var buffer = result.Buffer;
            while (FrameReader.TryReadFrame(ref buffer, Http2Limits.DefaultMaxFrameSize, out var header, out var payloadSequence))
            {
                var payload = payloadSequence.ToArray();
                outcome.Frames.Add(header);
                if (first)
                {
                    Assert.True(header.Type is FrameType.Settings or FrameType.GoAway, $"server began with {header.Type}");
                    first = false;
                }
                Assert.True(block is null || header.Type == FrameType.Continuation, "server interleaved a frame into a header block");
                switch (header.Type)
                {
                    case FrameType.Headers:
                        Assert.NotEqual(0, header.StreamId);
                        block = new List<byte>(payload);
                        if (header.Has(FrameFlags.EndStream)) outcome.Responses++;
                        break;
                    case FrameType.Continuation:
                        Assert.NotNull(block);
                        block!.AddRange(payload);
                        break;
                    case FrameType.Data:
                        Assert.NotEqual(0, header.StreamId);
                        break;
                    case FrameType.GoAway:
                        Assert.Null(outcome.GoAway);
                        outcome.GoAway = (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4));
                        Assert.Contains(outcome.GoAway.Value, ConnectionErrorCodes);
                        break;
                    case FrameType.RstStream:
                        var code = (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(payload);
                        Assert.Contains(code, StreamErrorCodes);
                        outcome.Resets.Add((header.StreamId, code));
                        break;
                    case FrameType.Ping when header.Has(FrameFlags.Ack):
                        if (BinaryPrimitives.ReadUInt64BigEndian(payload) == pingPayload) outcome.PingAcked = true;
                        break;
                    case FrameType.Settings or FrameType.WindowUpdate or FrameType.Ping:
                        break;
                    default:
                        Assert.Fail($"server sent a {header.Type} frame");
                        break;
                }
                if (block is not null && header.Has(FrameFlags.EndHeaders))
                {
                    var fields = new List<HeaderField>();
                    decoder.Decode(block.ToArray(), fields); // the server's HPACK output must always decode
                    Assert.Contains(fields, f => f.Name == ":status" || f.Name == "grpc-status");
                    block = null;
                }
            }
            output.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                Assert.True(buffer.IsEmpty, "server output ends inside a frame");
                Assert.Null(block);
                break;
            }
        }
        await output.CompleteAsync();
    }

    // ---- generating valid sequences and mutating them ----

    private static byte[] Frame(FrameType type, FrameFlags flags, int stream, byte[] payload) => RawHttp2Client.FrameBytes(type, flags, stream, payload);

    /// <summary>A valid client conversation after the preface: SETTINGS then a few calls with varied framing.</summary>
    private static List<byte[]> ValidSequence(Random random)
    {
        var frames = new List<byte[]>();
        var encoder = new HpackEncoder();
        var settings = new List<byte>();
        void Setting(SettingId id, uint value) => settings.AddRange([(byte)((int)id >> 8), (byte)id, (byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
        if (random.Next(2) == 0) Setting(SettingId.InitialWindowSize, (uint)random.Next(1, 1 << 20));
        if (random.Next(3) == 0) Setting(SettingId.MaxFrameSize, (uint)random.Next(16_384, 1 << 20));
        if (random.Next(3) == 0) Setting(SettingId.HeaderTableSize, (uint)random.Next(0, 8192));
        if (random.Next(3) == 0) Setting(SettingId.EnablePush, 0);
        frames.Add(Frame(FrameType.Settings, FrameFlags.None, 0, settings.ToArray()));
        if (random.Next(2) == 0) frames.Add(Frame(FrameType.WindowUpdate, FrameFlags.None, 0, [0, 1, 0, 0]));

        int streams = random.Next(1, 5);
        int pings = 0;
        for (int s = 0; s < streams; s++)
        {
            int id = 1 + 2 * s;
            bool events = random.Next(3) == 0;
            var headers = RawHttp2Client.RequestHeaders(events ? RawHttp2Client.EventsPath : RawHttp2Client.VersionPath);
            if (events) headers.Add(new("x-count", random.Next(0, 10).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            if (random.Next(3) == 0) headers.Add(new("grpc-timeout", random.Next(1, 999) + "m"));
            if (random.Next(3) == 0) headers.Add(new("x-extra", new string('e', random.Next(0, 200))));
            var writer = new ArrayBufferWriter<byte>();
            encoder.Encode(headers, writer);
            var block = writer.WrittenSpan.ToArray();
            string version = random.Next(5) switch
            {
                0 => "big:" + random.Next(100, 999),
                1 => $"fail:{random.Next(1, 16)}:fuzz",
                2 => "boom",
                _ => "echo" + random.Next(),
            };
            var body = events ? RawHttp2Client.GrpcBody(new GetEventsRequest()) : RawHttp2Client.GrpcBody(new VersionRequest { Version = version });

            // HEADERS, possibly padded / with priority / split into CONTINUATIONs.
            int split = random.Next(3) == 0 ? random.Next(0, block.Length) : block.Length;
            var first = block[..split];
            var flags = split == block.Length ? FrameFlags.EndHeaders : FrameFlags.None;
            if (random.Next(4) == 0) { flags |= FrameFlags.Priority; first = [0, 0, 0, 0, 16, .. first]; }
            if (random.Next(4) == 0) { int pad = random.Next(0, 20); flags |= FrameFlags.Padded; first = [(byte)pad, .. first, .. new byte[pad]]; }
            frames.Add(Frame(FrameType.Headers, flags, id, first));
            if (split < block.Length) frames.Add(Frame(FrameType.Continuation, FrameFlags.EndHeaders, id, block[split..]));

            // DATA in one or more frames, possibly padded.
            int offset = 0;
            while (offset < body.Length)
            {
                int chunk = random.Next(2) == 0 ? body.Length - offset : random.Next(1, body.Length - offset + 1);
                bool last = offset + chunk == body.Length;
                var payload = body[offset..(offset + chunk)];
                var dataFlags = last ? FrameFlags.EndStream : FrameFlags.None;
                if (random.Next(4) == 0) { int pad = random.Next(0, 10); dataFlags |= FrameFlags.Padded; payload = [(byte)pad, .. payload, .. new byte[pad]]; }
                frames.Add(Frame(FrameType.Data, dataFlags, id, payload));
                offset += chunk;
            }
            switch (random.Next(6))
            {
                case 0: frames.Add(Frame(FrameType.WindowUpdate, FrameFlags.None, id, [0, 0, 16, 0])); break;
                case 1: frames.Add(Frame(FrameType.RstStream, FrameFlags.None, id, [0, 0, 0, 8])); break;
                case 2: frames.Add(Frame(FrameType.Priority, FrameFlags.None, id, [0, 0, 0, 0, 1])); break;
                // With the harness's own PING, at most three in a row: a fourth is "too_many_pings" (grpc-go's policy).
                case 3 when pings++ < 2: frames.Add(Frame(FrameType.Ping, FrameFlags.None, 0, new byte[8])); break;
            }
        }
        return frames;
    }

    private static byte[] Mutate(List<byte[]> frames, Random random)
    {
        frames = frames.Select(f => (byte[])f.Clone()).ToList();
        int mutations = random.Next(1, 4);
        for (int m = 0; m < mutations && frames.Count > 0; m++)
        {
            int i = random.Next(frames.Count);
            var f = frames[i];
            int kind = random.Next(10);
            if (f.Length < Http2Limits.FrameHeaderLength && kind is 2 or 3 or 4 or 8) kind = 0; // inserted junk has no header
            switch (kind)
            {
                case 0: f[random.Next(f.Length)] ^= (byte)(1 << random.Next(8)); break;                 // flip a bit anywhere
                case 1: f[random.Next(f.Length)] = (byte)random.Next(256); break;                       // replace a byte
                case 2: f[3] = (byte)random.Next(0, 12); break;                                          // change the type
                case 3: f[4] = (byte)random.Next(256); break;                                            // change the flags
                case 4: BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(5), random.Next(0, 12)); break;   // change the stream
                case 5: frames.RemoveAt(i); break;                                                       // drop a frame
                case 6: frames.Insert(i, f); break;                                                      // duplicate a frame
                case 7: if (i + 1 < frames.Count) (frames[i], frames[i + 1]) = (frames[i + 1], frames[i]); break; // reorder
                case 8:                                                                                  // lie about the length
                    int length = Math.Max(0, (f[0] << 16 | f[1] << 8 | f[2]) + random.Next(-4, 5));
                    f[0] = (byte)(length >> 16); f[1] = (byte)(length >> 8); f[2] = (byte)length;
                    break;
                case 9:                                                                                  // random junk in between
                    var junk = new byte[random.Next(1, 20)];
                    random.NextBytes(junk);
                    frames.Insert(i, junk);
                    break;
            }
        }
        return frames.SelectMany(f => f).ToArray();
    }

    private static GrpcServer FuzzGrpcServer(out Http2RequestHandler handler)
    {
        var server = new GrpcServer(new GrpcServerOptions { MaxReceiveMessageSize = 64 * 1024 });
        RuntimeService.BindService(server, new TestRuntimeService());
        handler = GrpcHandler(server);
        return server;
    }

    private static readonly Http2ServerOptions[] OptionSets =
    [
        new(),
        new() { MaxConcurrentStreams = 2, StreamWindowSize = 100, ConnectionWindowSize = 65_535 },
        new() { MaxHeaderListSize = 300, HeaderTableSize = 0 },
    ];

    [Fact]
    public async Task ValidSequencesAreServedInMemory()
    {
        // The generator itself must be right, or the mutation results mean nothing.
        var random = new Random(7);
        await using var server = FuzzGrpcServer(out var handler);
        for (int i = 0; i < 100; i++)
        {
            var frames = ValidSequence(random);
            var outcome = await RunInMemoryAsync([.. Http2Limits.ClientPreface, .. frames.SelectMany(f => f)], new Http2ServerOptions(), handler);
            Assert.Null(outcome.GoAway);
            Assert.True(outcome.PingAcked);
            Assert.DoesNotContain(outcome.Resets, r => r.Code is not (Http2ErrorCode.NoError));
        }
    }

    [Fact]
    public async Task RandomBytesAfterTheHandshakeInMemory()
    {
        UnobservedExceptions.Start();
        var random = new Random(Seed(1337));
        var stopwatch = Stopwatch.StartNew();
        await using var server = FuzzGrpcServer(out var handler);
        int runs = 0, goAways = 0;
        while (runs < Runs(600) && (stopwatch.ElapsedMilliseconds < 2000 || Runs(0) > 0))
        {
            var junk = new byte[random.Next(1, 200)];
            random.NextBytes(junk);
            // Often start with a plausible frame header so the payload parsers get exercised, not just the length check.
            if (junk.Length >= 9 && random.Next(2) == 0)
            {
                junk[0] = 0; junk[1] = 0; junk[2] = (byte)random.Next(0, Math.Min(junk.Length - 9, 255) + 1);
                junk[3] = (byte)random.Next(0, 11);
                junk[5] &= 0x00; junk[6] = 0; junk[7] = 0;
            }
            byte[] input = [.. Http2Limits.ClientPreface, .. Frame(FrameType.Settings, FrameFlags.None, 0, []), .. junk];
            var outcome = await RunInMemoryAsync(input, OptionSets[runs % OptionSets.Length], handler);
            if (outcome.GoAway is not null) goAways++;
            runs++;
        }
        Assert.True(runs >= 50, $"only {runs} runs");
        Assert.True(goAways > 0, "random input never produced a connection error; the harness is not reaching the parser");
        UnobservedExceptions.AssertNone();
    }

    [Fact]
    public async Task MutatedValidSequencesInMemory()
    {
        UnobservedExceptions.Start();
        var random = new Random(Seed(4242));
        var stopwatch = Stopwatch.StartNew();
        await using var server = FuzzGrpcServer(out var handler);
        // Inputs come from the seeded generator in order; workers then run them concurrently.
        var inputs = new List<(byte[] Input, Http2ServerOptions Options)>();
        for (int i = 0; i < Runs(2000); i++)
        {
            byte[] input = [.. Http2Limits.ClientPreface, .. Mutate(ValidSequence(random), random)];
            if (random.Next(50) == 0) input[random.Next(Http2Limits.ClientPreface.Length)] ^= 1; // now and then, the preface too
            inputs.Add((input, OptionSets[i % OptionSets.Length]));
        }
        int next = -1, runs = 0, served = 0, goAways = 0, resets = 0;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < inputs.Count && (stopwatch.ElapsedMilliseconds < 2500 || Runs(0) > 0))
            {
                var outcome = await RunInMemoryAsync(inputs[i].Input, inputs[i].Options, handler);
                Interlocked.Increment(ref runs);
                if (outcome.GoAway is not null) Interlocked.Increment(ref goAways);
                Interlocked.Add(ref resets, outcome.Resets.Count);
                Interlocked.Add(ref served, outcome.Responses);
            }
        }));
        // The harness must reach every kind of outcome, or the run proves little.
        Assert.True(runs >= 50, $"only {runs} runs");
        Assert.True(goAways > 0 && served > 0 && (resets > 0 || runs < 300), $"runs={runs} goaways={goAways} served={served} resets={resets}");
        UnobservedExceptions.AssertNone();
    }

    // ---- over TCP, against a listening GrpcServer ----

    [Fact]
    public async Task FuzzedConnectionsNeverStopTheServer()
    {
        UnobservedExceptions.Start();
        var random = new Random(99);
        await using var server = TestServer.Start(new GrpcServerOptions { Http2 = new() { MaxConcurrentStreams = 3 } });
        var stopwatch = Stopwatch.StartNew();
        int runs = 0;
        while (runs < 60 && stopwatch.ElapsedMilliseconds < 2500)
        {
            var batch = Enumerable.Range(0, 6).Select(_ =>
            {
                byte[] input;
                if (random.Next(3) == 0)
                {
                    var junk = new byte[random.Next(1, 300)];
                    random.NextBytes(junk);
                    input = [.. Frame(FrameType.Settings, FrameFlags.None, 0, []), .. junk];
                }
                else input = Mutate(ValidSequence(random), random);
                return input;
            }).ToList();
            await Task.WhenAll(batch.Select(async input =>
            {
                await using var client = await server.ConnectAsync();
                await client.SendPrefaceAsync();
                try { await client.SendRawAsync(input); }
                catch (IOException) { } // the server may already have hung up
                var frames = await client.ReadUntilQuietAsync(TimeSpan.FromMilliseconds(30));
                foreach (var f in client.Received)
                {
                    if (f.Type == FrameType.GoAway) Assert.Contains(f.ErrorCode, ConnectionErrorCodes);
                    if (f.Type == FrameType.RstStream) Assert.Contains(f.ErrorCode, StreamErrorCodes);
                }
                // A connection error always comes with GOAWAY before the close.
                if (client.Closed) Assert.NotNull(client.GoAway);
            }));
            runs += batch.Count;
        }
        await server.AssertServesAsync();
        Assert.True(runs >= 12, $"only {runs} runs");
        UnobservedExceptions.AssertNone();
    }
}
