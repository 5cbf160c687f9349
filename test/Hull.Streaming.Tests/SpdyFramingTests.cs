using System.Text;
using Hull.Streaming;
using Hull.Streaming.Spdy;

namespace Hull.Streaming.Tests;

public class SpdyFramingTests
{
    private static (SpdyFrameWriter W, SpdyFrameReader R, MemoryStream Wire) Pair()
    {
        var wire = new MemoryStream();
        return (new SpdyFrameWriter(wire), new SpdyFrameReader(wire), wire);
    }

    private static async Task<SpdyFrame> RoundTrip(SpdyFrame frame)
    {
        var (w, r, wire) = Pair();
        await w.WriteAsync(frame);
        wire.Position = 0;
        return (await r.ReadFrameAsync(default))!;
    }

    [Fact]
    public void Dictionary_is_the_1423_byte_SPDY3_dictionary_with_its_known_id()
    {
        Assert.Equal(1423, SpdyDictionary.V3.Length);
        Assert.Equal(SpdyDictionary.Adler32, Adler32(SpdyDictionary.V3));
    }

    [Fact]
    public void Compressed_header_blocks_start_with_the_zlib_header_naming_the_SPDY3_dictionary()
    {
        using var d = new SpdyHeaderCompressor();
        var bytes = d.Compress(SpdyHeaderBlock.Encode(new SpdyHeaders { { "streamtype", "stdout" } }));
        // 78 bb: deflate, 32K window, FDICT set; then the DICTID e3 c6 a7 c2 seen on every SPDY/3 wire.
        Assert.Equal(new byte[] { 0x78, 0xbb, 0xe3, 0xc6, 0xa7, 0xc2 }, bytes[..6]);
        // A sync flush ends every block, so the peer can decode it before the next one is written.
        Assert.Equal(new byte[] { 0x00, 0x00, 0xff, 0xff }, bytes[^4..]);
    }

    [Fact]
    public void Header_compression_context_persists_across_blocks()
    {
        using var d = new SpdyHeaderCompressor();
        using var i = new SpdyHeaderDecompressor();
        int firstLength = 0;
        for (int n = 0; n < 5; n++)
        {
            var h = new SpdyHeaders { { "streamtype", "error" }, { "port", (8000 + n).ToString() }, { "requestid", n.ToString() } };
            var compressed = d.Compress(SpdyHeaderBlock.Encode(h));
            if (n == 0) firstLength = compressed.Length;
            else
            {
                Assert.False(compressed.AsSpan().StartsWith(new byte[] { 0x78, 0xbb }), "only the first block carries the zlib header");
                Assert.True(compressed.Length < firstLength, "later blocks refer back to earlier ones");
            }
            var back = SpdyHeaderBlock.Decode(i.Decompress(compressed, 1 << 16));
            Assert.Equal(h.ToString(), back.ToString());
        }
    }

    [Fact]
    public void Compressor_output_inflates_with_the_dictionary_in_the_window()
    {
        // Header names from the dictionary ("content-type", "user-agent") come out as back-references into it: much
        // shorter than the text, and only decodable by an inflater that has the dictionary.
        using var d = new SpdyHeaderCompressor();
        var block = SpdyHeaderBlock.Encode(new SpdyHeaders { { "content-type", "text/html" }, { "user-agent", "hull" }, { "accept-encoding", "gzip,deflate" } });
        var compressed = d.Compress(block);
        Assert.True(compressed.Length - 6 < block.Length / 2, $"{compressed.Length} bytes for a {block.Length}-byte block");
        using var i = new SpdyHeaderDecompressor();
        Assert.Equal(block, i.Decompress(compressed, 1 << 16));
    }

    [Fact]
    public void Decompressor_reads_blocks_compressed_by_zlib_with_the_SPDY_dictionary()
    {
        // Made by zlib 1.2.13 (Python's zlib.compressobj(9, DEFLATED, 15, 8, 0, zdict=<SPDY dictionary>), each block
        // followed by flush(Z_SYNC_FLUSH)), as Go's compress/zlib and node's zlib write them: level 9 gives 78 f9.
        string[] wire =
        [
            "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e01c6061606100a4398b20d198094ade8c0600000000ffff",
            "c2aa19540e2512d60b000000ffff",
            "02654b5046b082e70e6660ee00e5072b2c7903000000ffff",
        ];
        string[] expected = ["streamtype=error, port=8080, requestid=0", "streamtype=data, port=8080, requestid=0", ":status=200, :version=HTTP/1.1"];
        using var i = new SpdyHeaderDecompressor();
        for (int n = 0; n < wire.Length; n++)
            Assert.Equal(expected[n], SpdyHeaderBlock.Decode(i.Decompress(Convert.FromHexString(wire[n]), 1 << 16)).ToString());
    }

    [Fact]
    public void Decompressor_rejects_a_stream_made_with_another_dictionary()
    {
        // zlib with zdict "not the spdy dictionary": its DICTID is not the SPDY dictionary's.
        using var i = new SpdyHeaderDecompressor();
        var e = Assert.Throws<InvalidDataException>(() => i.Decompress(Convert.FromHexString("78f967db08e9ca48cdc9c907000000ffff"), 1024));
        Assert.Contains("preset dictionary", e.Message);
        using var j = new SpdyHeaderDecompressor();
        Assert.Throws<InvalidDataException>(() => j.Decompress("not zlib"u8, 1024));
    }

    [Fact]
    public void Decompressor_enforces_the_output_limit()
    {
        using var d = new SpdyHeaderCompressor();
        using var i = new SpdyHeaderDecompressor();
        Assert.Throws<InvalidDataException>(() => i.Decompress(d.Compress(new byte[100_000]), 10_000));
    }

    private static uint Adler32(ReadOnlySpan<byte> data)
    {
        uint a = 1, b = 0;
        foreach (var x in data)
        {
            a = (a + x) % 65521;
            b = (b + a) % 65521;
        }
        return (b << 16) | a;
    }

    [Fact]
    public async Task SynStream_round_trips_with_headers_priority_and_flags()
    {
        var f = (SpdySynStreamFrame)await RoundTrip(new SpdySynStreamFrame(5, 3, 7, 0, SpdyFlags.Fin | SpdyFlags.Unidirectional,
            new SpdyHeaders { { "streamType", "stdin" }, { "multi", "a\0b" } }));
        Assert.Equal((5u, 3u, (byte)7, true, true), (f.StreamId, f.AssociatedStreamId, f.Priority, f.Fin, f.Unidirectional));
        Assert.Equal("stdin", f.Headers.Get("STREAMTYPE"));
        Assert.Equal("a", f.Headers.Get("multi"));
        Assert.Equal("streamtype", f.Headers[0].Key);
    }

    [Fact]
    public async Task Control_frames_round_trip()
    {
        Assert.Equal(new SpdyRstStreamFrame(9, SpdyRstStatus.FlowControlError), await RoundTrip(new SpdyRstStreamFrame(9, SpdyRstStatus.FlowControlError)));
        Assert.Equal(new SpdyPingFrame(0xFFFFFFFF), await RoundTrip(new SpdyPingFrame(0xFFFFFFFF)));
        Assert.Equal(new SpdyGoAwayFrame(11, SpdyGoAwayStatus.InternalError), await RoundTrip(new SpdyGoAwayFrame(11, SpdyGoAwayStatus.InternalError)));
        Assert.Equal(new SpdyWindowUpdateFrame(0, 0x7FFFFFFF), await RoundTrip(new SpdyWindowUpdateFrame(0, 0x7FFFFFFF)));
        var s = (SpdySettingsFrame)await RoundTrip(new SpdySettingsFrame(true, [new SpdySetting(SpdySettingId.InitialWindowSize, 1, 1 << 20), new SpdySetting(SpdySettingId.MaxConcurrentStreams, 0, 100)]));
        Assert.True(s.ClearSettings);
        Assert.Equal(1u << 20, s.Get(SpdySettingId.InitialWindowSize));
        Assert.Equal(100u, s.Get(SpdySettingId.MaxConcurrentStreams));
        var r = (SpdySynReplyFrame)await RoundTrip(new SpdySynReplyFrame(2, true, new SpdyHeaders { { ":status", "200" } }));
        Assert.Equal("200", r.Headers.Get(":status"));
        Assert.True(r.Fin);
        var h = (SpdyHeadersFrame)await RoundTrip(new SpdyHeadersFrame(4, false, new SpdyHeaders { { "x", "y" } }));
        Assert.Equal("y", h.Headers.Get("x"));
    }

    [Fact]
    public async Task Data_frame_round_trips_and_has_the_draft3_layout()
    {
        var w = new SpdyFrameWriter(Stream.Null);
        var bytes = w.Serialize(new SpdyDataFrame(3, true, "hi"u8.ToArray()));
        Assert.Equal(new byte[] { 0, 0, 0, 3, 1, 0, 0, 2, (byte)'h', (byte)'i' }, bytes);
        var d = (SpdyDataFrame)await RoundTrip(new SpdyDataFrame(3, true, "hi"u8.ToArray()));
        Assert.Equal("hi", Encoding.ASCII.GetString(d.Data.Span));
        Assert.True(d.Fin);
    }

    [Fact]
    public void Control_frame_header_is_version_3_with_the_control_bit()
    {
        var bytes = new SpdyFrameWriter(Stream.Null).Serialize(new SpdyPingFrame(1));
        Assert.Equal(new byte[] { 0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1 }, bytes);
    }

    [Fact]
    public void Reader_rejects_other_versions_and_bad_lengths()
    {
        var r = new SpdyFrameReader(Stream.Null);
        Assert.Throws<SpdyProtocolException>(() => r.Parse(0x80020006, 0, new byte[4]));
        Assert.Throws<SpdyProtocolException>(() => r.Parse(0x80030006, 0, new byte[3]));
        Assert.Throws<SpdyProtocolException>(() => r.Parse(0x80030004, 0, new byte[] { 0, 0, 0, 2, 0, 0, 0, 7 }));
        Assert.IsType<SpdyUnknownControlFrame>(r.Parse(0x8003000A, 0, new byte[3]));
    }

    [Fact]
    public async Task Truncated_frame_is_an_error_but_clean_eof_is_not()
    {
        Assert.Null(await new SpdyFrameReader(new MemoryStream()).ReadFrameAsync(default));
        await Assert.ThrowsAsync<EndOfStreamException>(async () => await new SpdyFrameReader(new MemoryStream(new byte[] { 0x80, 3, 0, 6, 0, 0, 0, 4, 0 })).ReadFrameAsync(default));
    }

    [Fact]
    public async Task Session_flow_control_blocks_a_flow_controlled_peer_until_window_update()
    {
        // Two sessions over a socket pair; the client is flow-controlled (it sends SETTINGS),
        // so the server may send at most 64 KiB before the client's WINDOW_UPDATEs.
        var (server, client, incoming, clientStream) = await OpenStreamPair();
        await using var _ = server;
        await using var __ = client;
        var payload = new byte[300 * 1024];
        new Random(1).NextBytes(payload);
        var write = Task.Run(async () => { await incoming.WriteAsync(payload); await incoming.CloseWriteAsync(); });
        await Task.Delay(200);
        Assert.False(write.IsCompleted, "writer must stall on the 64 KiB window until the reader consumes");
        var got = new MemoryStream();
        await clientStream.CopyToAsync(got);
        await write;
        Assert.Equal(payload, got.ToArray());
    }

    [Fact]
    public async Task A_reset_from_the_peer_wakes_a_writer_waiting_for_window()
    {
        var (server, client, serverStream, clientStream) = await OpenStreamPair();
        await using var _ = server;
        await using var __ = client;
        var write = serverStream.WriteAsync(new byte[300 * 1024]).AsTask();
        await Task.Delay(200);
        Assert.False(write.IsCompleted, "the writer waits for the reader's window updates");
        await clientStream.ResetAsync(SpdyRstStatus.Cancel);
        var e = await Assert.ThrowsAsync<IOException>(() => write.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("reset", e.Message);
    }

    [Fact]
    public async Task A_reset_after_fin_keeps_everything_the_peer_sent()
    {
        var (server, client, serverStream, clientStream) = await OpenStreamPair();
        await using var _ = server;
        await using var __ = client;
        await serverStream.WriteAsync("complete answer"u8.ToArray());
        await serverStream.CloseWriteAsync();
        await serverStream.ResetAsync(SpdyRstStatus.Cancel);
        await WaitUntil(() => clientStream.IsReset);
        var got = new MemoryStream();
        await clientStream.CopyToAsync(got).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("complete answer", Encoding.ASCII.GetString(got.ToArray()));
    }

    [Fact]
    public async Task Data_for_a_stream_reset_here_is_dropped_and_credited_back_to_the_session_window()
    {
        var (server, client, serverStream, clientStream) = await OpenStreamPair();
        await using var _ = server;
        await using var __ = client;
        // Unread data on a stream that is then reset: 48 KiB of the 64 KiB session window.
        await clientStream.WriteAsync(new byte[48 * 1024]);
        await Task.Delay(200);
        await serverStream.ResetAsync(SpdyRstStatus.Cancel);
        // Another stream must still get more than the session window through.
        var open = client.OpenStreamAsync(new SpdyHeaders { { "streamtype", "data" } });
        var second = await server.IncomingStreams.ReadAsync();
        await second.ReplyAsync();
        var clientSecond = await open;
        var payload = new byte[200 * 1024];
        var read = Task.Run(async () => { var ms = new MemoryStream(); await second.CopyToAsync(ms); return ms.Length; });
        await clientSecond.WriteAsync(payload).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        await clientSecond.CloseWriteAsync();
        Assert.Equal(payload.Length, await read.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Data_still_in_flight_for_a_reset_stream_is_dropped_quietly_and_credited_to_the_session()
    {
        // A raw peer, so the frames on the wire are the test's: it keeps sending DATA after the server reset the stream.
        var (a, b) = await SocketPair();
        await using var server = new SpdySession(a, isServer: true);
        server.Start();
        using var writer = new SpdyFrameWriter(b);
        using var reader = new SpdyFrameReader(b);
        await writer.WriteAsync(new SpdySynStreamFrame(1, 0, 0, 0, 0, new SpdyHeaders { { "streamtype", "data" } }));
        var stream = await server.IncomingStreams.ReadAsync();
        await stream.ResetAsync(SpdyRstStatus.Cancel);
        for (int i = 0; i < 4; i++) await writer.WriteAsync(new SpdyDataFrame(1, false, new byte[16 * 1024]));

        var seen = new List<SpdyFrame>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (!seen.Any(f => f is SpdyWindowUpdateFrame { StreamId: 0 }))
            seen.Add((await reader.ReadFrameAsync(timeout.Token))!);
        Assert.Equal([new SpdyRstStreamFrame(1, SpdyRstStatus.Cancel)], seen.OfType<SpdyRstStreamFrame>());
        Assert.True(seen.OfType<SpdyWindowUpdateFrame>().Where(w => w.StreamId == 0).Sum(w => w.DeltaWindowSize) >= 32 * 1024);
        // An id that was never opened still gets INVALID_STREAM.
        await writer.WriteAsync(new SpdyDataFrame(5, false, new byte[1]));
        SpdyFrame? next;
        do next = await reader.ReadFrameAsync(timeout.Token); while (next is not SpdyRstStreamFrame);
        Assert.Equal(new SpdyRstStreamFrame(5, SpdyRstStatus.InvalidStream), next);
    }

    private static async Task<(SpdySession Server, SpdySession Client, SpdyStream ServerStream, SpdyStream ClientStream)> OpenStreamPair()
    {
        var (a, b) = await SocketPair();
        var server = new SpdySession(a, isServer: true);
        var client = new SpdySession(b, isServer: false);
        server.Start();
        client.Start();
        var open = client.OpenStreamAsync(new SpdyHeaders { { "streamtype", "data" } });
        var incoming = await server.IncomingStreams.ReadAsync();
        await incoming.ReplyAsync();
        return (server, client, incoming, await open);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 100 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition());
    }

    [Fact]
    public async Task Streams_opened_at_once_go_on_the_wire_in_id_order()
    {
        // SPDY ids must increase on the wire; a server ends the session at the first one that does not (as Hull's does).
        var (a, b) = await SocketPair();
        await using var server = new SpdySession(a, isServer: true);
        await using var client = new SpdySession(b, isServer: false);
        server.Start();
        client.Start();
        _ = Task.Run(async () =>
        {
            await foreach (var s in server.IncomingStreams.ReadAllAsync()) await s.ReplyAsync();
        });
        // More threads than cores, each opening streams back to back: some get preempted between taking an id and
        // writing its SYN_STREAM, which is when another thread's later id could overtake it.
        using var go = new ManualResetEventSlim();
        var opens = Enumerable.Range(0, 4 * Environment.ProcessorCount).Select(_ => Task.Factory.StartNew(() =>
        {
            go.Wait();
            return Enumerable.Range(0, 100).Select(_ => client.OpenStreamAsync(new SpdyHeaders { { "streamtype", "data" } })).ToList();
        }, TaskCreationOptions.LongRunning)).ToList();
        go.Set();
        var all = (await Task.WhenAll(opens)).SelectMany(l => l);
        var streams = await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(400 * Environment.ProcessorCount, streams.Select(s => s.Id).Distinct().Count());
        Assert.Null(server.CloseReason);
        Assert.False(server.Closed.IsCancellationRequested);
    }

    [Fact]
    public async Task Ping_round_trips()
    {
        var (a, b) = await SocketPair();
        await using var server = new SpdySession(a, isServer: true);
        await using var client = new SpdySession(b, isServer: false);
        server.Start();
        client.Start();
        var rtt = await client.PingAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(rtt < TimeSpan.FromSeconds(5));
        await server.PingAsync().WaitAsync(TimeSpan.FromSeconds(5));
    }

    internal static async Task<(Stream, Stream)> SocketPair()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var c = new System.Net.Sockets.TcpClient();
        await c.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)l.LocalEndpoint).Port);
        var s = await l.AcceptTcpClientAsync();
        l.Stop();
        return (s.GetStream(), c.GetStream());
    }
}

public class WebSocketChannelFramingTests
{
    [Fact]
    public void Binary_messages_carry_the_channel_byte()
    {
        var (msg, type) = WebSocketChannelConnection.Encode(2, "err"u8, base64: false);
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Binary, type);
        Assert.Equal(new byte[] { 2, (byte)'e', (byte)'r', (byte)'r' }, msg);
        var (ch, data) = WebSocketChannelConnection.Decode(msg, false, false, out var close);
        Assert.Equal((2, "err", false), (ch, Encoding.ASCII.GetString(data), close));
    }

    [Fact]
    public void Base64_messages_are_text_with_an_ascii_channel_digit()
    {
        var (msg, type) = WebSocketChannelConnection.Encode(1, "hello"u8, base64: true);
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Text, type);
        Assert.Equal("1aGVsbG8=", Encoding.ASCII.GetString(msg));
        var (ch, data) = WebSocketChannelConnection.Decode(msg, true, false, out _);
        Assert.Equal((1, "hello"), (ch, Encoding.ASCII.GetString(data)));
    }

    [Fact]
    public void V5_close_signal_names_the_channel_and_is_only_v5()
    {
        var (ch, _) = WebSocketChannelConnection.Decode(new byte[] { 255, 0 }, false, supportsClose: true, out var close);
        Assert.True(close);
        Assert.Equal(0, ch);
        Assert.Throws<InvalidDataException>(() => WebSocketChannelConnection.Decode(new byte[] { 255, 0, 1 }, false, true, out _));
        var (ch4, _) = WebSocketChannelConnection.Decode(new byte[] { 255, 0 }, false, supportsClose: false, out var close4);
        Assert.False(close4);
        Assert.Equal(255, ch4);
    }

    [Fact]
    public void Exit_status_documents_match_kubelet()
    {
        Assert.Equal("""{"metadata":{},"status":"Success"}""", Encoding.UTF8.GetString(StreamStatus.Success()));
        var json = Encoding.UTF8.GetString(StreamStatus.NonZeroExit(3, ["sh", "-c", "exit 3"]));
        Assert.Contains("\"reason\":\"NonZeroExitCode\"", json);
        Assert.Contains("\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"3\"}]", json);
        Assert.Equal(3, StreamStatus.ParseExitCode(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(0, StreamStatus.ParseExitCode([]));
        Assert.Throws<RemoteCommandException>(() => StreamStatus.ParseExitCode(StreamStatus.InternalError("boom")));
        Assert.Empty(StreamStatus.ForProtocol(StreamProtocols.RemoteCommandV3, StreamStatus.Success()));
        Assert.StartsWith("command terminated", Encoding.UTF8.GetString(StreamStatus.ForProtocol(StreamProtocols.RemoteCommandV2, StreamStatus.NonZeroExit(1, ["x"]))));
    }

    [Fact]
    public async Task Resize_stream_decodes_concatenated_json_objects()
    {
        var ms = new MemoryStream("{\"Width\":80,\"Height\":24}\n{\"Width\":120,\"Height\":40}{\"Width\":1,"u8.ToArray());
        var sizes = new List<TerminalSize>();
        await foreach (var s in StreamStatus.ReadResizeEvents(ms)) sizes.Add(s);
        Assert.Equal([new TerminalSize(80, 24), new TerminalSize(120, 40)], sizes);
    }

    [Fact]
    public void Protocol_negotiation_takes_the_clients_first_accepted()
    {
        Assert.Equal("v3.channel.k8s.io", StreamProtocols.Negotiate(["v9", "v3.channel.k8s.io", "v4.channel.k8s.io"], StreamProtocols.SpdyRemoteCommand));
        Assert.Null(StreamProtocols.Negotiate(["v9"], StreamProtocols.SpdyRemoteCommand));
        Assert.Equal(["a", "b", "c"], StreamProtocols.SplitList(["a, b", "c"]));
    }

    [Fact]
    public void Token_cache_is_single_use_expires_and_is_bounded()
    {
        var time = new ManualTime();
        var cache = new StreamingRequestCache(TimeSpan.FromMinutes(1), 2, time);
        var req = new ExecRequest("c1", ["echo"], false, false, true, false);
        var t1 = cache.Insert(req);
        Assert.Matches("^[A-Za-z0-9_-]{16}$", t1);
        Assert.True(cache.TryConsume(t1, out var got));
        Assert.Same(req, got);
        Assert.False(cache.TryConsume(t1, out _));
        var t2 = cache.Insert(req);
        cache.Insert(req);
        var ex = Assert.Throws<StreamingRequestLimitException>(() => cache.Insert(req));
        Assert.Equal(2, ex.Limit);
        time.Now += TimeSpan.FromSeconds(61);
        Assert.False(cache.TryConsume(t2, out _));
        cache.Insert(req); // expired entries make room
    }

    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now = DateTimeOffset.UnixEpoch;
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
