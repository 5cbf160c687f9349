using System.Buffers;
using Hull.Grpc.Http2;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Frame header codec, frame cutting and padding removal (RFC 9113 4.1, 4.2, 6.1, 6.2).</summary>
public class FrameReaderTests
{
    [Theory]
    [InlineData(0, FrameType.Settings, FrameFlags.None, 0, "000000040000000000")]
    [InlineData(8, FrameType.Ping, FrameFlags.Ack, 0, "000008060100000000")]
    [InlineData(16_777_215, FrameType.Data, FrameFlags.EndStream | FrameFlags.Padded, 0x7FFF_FFFF, "FFFFFF00097FFFFFFF")]
    [InlineData(0x010203, FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.Priority, 5, "01020301240000000" + "5")]
    public void HeaderRoundTrips(int length, FrameType type, FrameFlags flags, int streamId, string hex)
    {
        var header = new FrameHeader(length, type, flags, streamId);
        var bytes = new byte[9];
        header.Write(bytes);
        Assert.Equal(hex, Convert.ToHexString(bytes));
        Assert.Equal(header, FrameHeader.Parse(bytes));
    }

    [Fact]
    public void ReservedStreamBitIsIgnoredOnReceiptAndNeverSent()
    {
        var parsed = FrameHeader.Parse(Convert.FromHexString("000000000080000003"));
        Assert.Equal(3, parsed.StreamId);
        var bytes = new byte[9];
        new FrameHeader(0, FrameType.Data, FrameFlags.None, -1).Write(bytes);
        Assert.Equal("0000000000" + "7FFFFFFF", Convert.ToHexString(bytes));
    }

    [Fact]
    public void UnknownTypesAndFlagsSurviveParsing()
    {
        var parsed = FrameHeader.Parse(Convert.FromHexString("000001EEFF00000001"));
        Assert.Equal((FrameType)0xEE, parsed.Type);
        Assert.Equal((FrameFlags)0xFF, parsed.Flags);
        Assert.True(parsed.Has(FrameFlags.Padded));
    }

    [Fact]
    public void IncompleteFramesAreLeftInTheBuffer()
    {
        var frame = RawHttp2Client.FrameBytes(FrameType.Ping, FrameFlags.None, 0, [1, 2, 3, 4, 5, 6, 7, 8]);
        for (int cut = 0; cut < frame.Length; cut++)
        {
            var buffer = new ReadOnlySequence<byte>(frame, 0, cut);
            Assert.False(FrameReader.TryReadFrame(ref buffer, 16_384, out _, out _));
            Assert.Equal(cut, buffer.Length);
        }
    }

    [Fact]
    public void ConsecutiveFramesAcrossSegmentsAreCut()
    {
        var frames = new List<byte[]>
        {
            RawHttp2Client.FrameBytes(FrameType.Settings, FrameFlags.Ack, 0, []),
            RawHttp2Client.FrameBytes(FrameType.Data, FrameFlags.EndStream, 1, Enumerable.Range(0, 100).Select(i => (byte)i).ToArray()),
            RawHttp2Client.FrameBytes(FrameType.WindowUpdate, FrameFlags.None, 3, [0, 0, 1, 0]),
        };
        byte[] all = frames.SelectMany(f => f).ToArray();
        // Every split into 3 segments must give the same frames.
        for (int a = 0; a <= all.Length; a += 7)
        for (int b = a; b <= all.Length; b += 11)
        {
            var buffer = Segments(all[..a], all[a..b], all[b..]);
            var seen = new List<(FrameHeader, byte[])>();
            while (FrameReader.TryReadFrame(ref buffer, 16_384, out var header, out var payload)) seen.Add((header, payload.ToArray()));
            Assert.Equal(0, buffer.Length);
            Assert.Equal(3, seen.Count);
            Assert.Equal(new FrameHeader(0, FrameType.Settings, FrameFlags.Ack, 0), seen[0].Item1);
            Assert.Equal(new FrameHeader(100, FrameType.Data, FrameFlags.EndStream, 1), seen[1].Item1);
            Assert.Equal(Enumerable.Range(0, 100).Select(i => (byte)i), seen[1].Item2);
            Assert.Equal([0, 0, 1, 0], seen[2].Item2);
        }
    }

    [Fact]
    public void FrameAtTheLimitIsAcceptedOneOverIsAFrameSizeError()
    {
        var atLimit = new ReadOnlySequence<byte>(RawHttp2Client.FrameBytes(FrameType.Data, FrameFlags.None, 1, new byte[16_384]));
        Assert.True(FrameReader.TryReadFrame(ref atLimit, 16_384, out var header, out _));
        Assert.Equal(16_384, header.Length);

        // Only the header is needed to reject an oversized frame.
        var overHeader = new byte[9];
        new FrameHeader(16_385, FrameType.Data, FrameFlags.None, 1).Write(overHeader);
        var over = new ReadOnlySequence<byte>(overHeader);
        var e = Assert.Throws<Http2ConnectionException>(() => FrameReader.TryReadFrame(ref over, 16_384, out _, out _));
        Assert.Equal(Http2ErrorCode.FrameSizeError, e.Code);
    }

    [Fact]
    public void PaddingIsRemoved()
    {
        var header = new FrameHeader(0, FrameType.Data, FrameFlags.Padded, 1);
        Assert.Equal([1, 2], FrameReader.RemovePadding(header, new ReadOnlySequence<byte>([3, 1, 2, 0, 0, 0])).ToArray());
        Assert.Empty(FrameReader.RemovePadding(header, new ReadOnlySequence<byte>([2, 0, 0])).ToArray());
        Assert.Equal([9], FrameReader.RemovePadding(header, new ReadOnlySequence<byte>([0, 9])).ToArray());
        var unpadded = new FrameHeader(0, FrameType.Data, FrameFlags.None, 1);
        Assert.Equal([3, 1, 2], FrameReader.RemovePadding(unpadded, new ReadOnlySequence<byte>([3, 1, 2])).ToArray());
    }

    [Theory]
    [InlineData(new byte[] { 1 }, Http2ErrorCode.ProtocolError)]
    [InlineData(new byte[] { 3, 0, 0 }, Http2ErrorCode.ProtocolError)]
    [InlineData(new byte[] { 255, 0 }, Http2ErrorCode.ProtocolError)]
    [InlineData(new byte[0], Http2ErrorCode.FrameSizeError)]
    public void BadPaddingIsAConnectionError(byte[] payload, Http2ErrorCode code)
    {
        var header = new FrameHeader(payload.Length, FrameType.Headers, FrameFlags.Padded | FrameFlags.EndHeaders, 1);
        var e = Assert.Throws<Http2ConnectionException>(() => FrameReader.RemovePadding(header, new ReadOnlySequence<byte>(payload)));
        Assert.Equal(code, e.Code);
    }

    [Fact]
    public void ReadsBigEndianWordsAcrossSegments()
    {
        var buffer = Segments([0xAA, 0x01], [0x02, 0x03], [0x04, 0xBB]);
        Assert.Equal(0x01020304u, FrameReader.ReadUInt32(buffer, 1));
    }

    [Fact]
    public void RandomBuffersOnlyEverThrowConnectionErrors()
    {
        var random = new Random(20240601);
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 20_000 && stopwatch.ElapsedMilliseconds < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            // Bias lengths small so complete frames are common.
            if (bytes.Length >= 3 && random.Next(2) == 0) { bytes[0] = 0; bytes[1] = 0; bytes[2] = (byte)random.Next(0, 40); }
            int split = random.Next(0, bytes.Length + 1);
            var buffer = random.Next(2) == 0 ? new ReadOnlySequence<byte>(bytes) : Segments(bytes[..split], bytes[split..]);
            int maxFrameSize = random.Next(2) == 0 ? 16_384 : random.Next(0, 64);
            try
            {
                long before = buffer.Length;
                while (FrameReader.TryReadFrame(ref buffer, maxFrameSize, out var header, out var payload))
                {
                    Assert.Equal(header.Length, payload.Length);
                    Assert.InRange(header.Length, 0, maxFrameSize);
                    Assert.InRange(header.StreamId, 0, int.MaxValue);
                    Assert.True(buffer.Length < before);
                    before = buffer.Length;
                    try
                    {
                        var data = FrameReader.RemovePadding(header, payload);
                        Assert.InRange(data.Length, 0, payload.Length);
                        if (payload.Length >= 4) FrameReader.ReadUInt32(payload, 0);
                    }
                    catch (Http2ConnectionException e)
                    {
                        Assert.True(e.Code is Http2ErrorCode.ProtocolError or Http2ErrorCode.FrameSizeError, e.Code.ToString());
                    }
                }
            }
            catch (Http2ConnectionException e)
            {
                Assert.Equal(Http2ErrorCode.FrameSizeError, e.Code);
            }
        }
    }

    private static ReadOnlySequence<byte> Segments(params byte[][] parts)
    {
        var nonEmpty = parts.Where(p => p.Length > 0).ToList();
        if (nonEmpty.Count == 0) return ReadOnlySequence<byte>.Empty;
        var first = new Segment(nonEmpty[0], 0);
        var last = first;
        foreach (var part in nonEmpty.Skip(1)) last = last.Append(part);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
