using System.Buffers;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Tests.Hpack;

/// <summary>Malformed blocks must be rejected with <see cref="HpackException"/> and nothing else.</summary>
public class HpackBadInputTests
{
    [Theory]
    [InlineData("index 0", "80")]
    [InlineData("index beyond empty dynamic table", "be")]
    [InlineData("large index beyond table", "ff00")]
    [InlineData("literal name index beyond table", "7f0001610161")]
    [InlineData("literal without indexing, name index beyond table", "0f7f")]
    [InlineData("truncated integer: missing continuation", "ff")]
    [InlineData("truncated integer: continuation bit on last octet", "ff80")]
    [InlineData("integer overflow: 10 continuation octets", "ff80808080808080808001")]
    [InlineData("integer overflow: value above int.MaxValue", "ffffffffff0f")]
    [InlineData("string length beyond buffer", "400a6162")]
    [InlineData("string length overflow", "400a7fffffffff0f")]
    [InlineData("name present but value missing", "400161")]
    [InlineData("literal without any name octets", "00")]
    [InlineData("Huffman value containing EOS", "00016184ffffffff")]
    [InlineData("Huffman EOS after a symbol", "000161851fffffffff")]
    [InlineData("Huffman padding longer than 7 bits", "000161821fff")]
    [InlineData("Huffman padding of a full octet", "00016181ff")]
    [InlineData("Huffman padding not all ones", "000161811d")]
    [InlineData("Huffman padding zeros", "0001618118")]
    [InlineData("size update above limit (4097 > 4096)", "3fe21f")]
    [InlineData("size update after a header field", "8220")]
    [InlineData("size update between header fields", "823f0182")]
    public void Rejects(string why, string hex)
    {
        var decoder = new HpackDecoder();
        var ex = Assert.Throws<HpackException>(() => decoder.Decode(Convert.FromHexString(hex), new List<HeaderField>()));
        Assert.False(string.IsNullOrEmpty(ex.Message), why);
    }

    [Fact]
    public void SizeUpdateAboveLoweredLimitIsRejected()
    {
        var decoder = new HpackDecoder { MaxDynamicTableSize = 100 };
        Assert.Throws<HpackException>(() => decoder.Decode([0x3f, 0x46], new List<HeaderField>())); // 101
        decoder = new HpackDecoder { MaxDynamicTableSize = 100 };
        var output = new List<HeaderField>();
        decoder.Decode([0x3f, 0x45, 0x82], output); // exactly 100 is fine
        Assert.Equal(100, decoder.Table.MaxSize);
        Assert.Equal([new HeaderField(":method", "GET")], output);
    }

    [Fact]
    public void LoweredLimitRequiresSizeUpdateAtStartOfNextBlock()
    {
        var decoder = new HpackDecoder();
        decoder.MaxDynamicTableSize = 1000;
        Assert.Throws<HpackException>(() => decoder.Decode([0x82], new List<HeaderField>()));

        // Raising the limit needs no update: the encoder may keep its smaller table.
        decoder = new HpackDecoder();
        decoder.MaxDynamicTableSize = 8192;
        var output = new List<HeaderField>();
        decoder.Decode([0x82], output);
        Assert.Single(output);
        Assert.Equal(4096, decoder.Table.MaxSize);
    }

    [Fact]
    public void HeaderListTooLargeThrowsButKeepsTableInSync()
    {
        // :method GET counts 7 + 3 + 32 = 42; three of them exceed 100.
        var decoder = new HpackDecoder(maxHeaderListSize: 100);
        var output = new List<HeaderField>();
        decoder.Decode([0x82, 0x82], output);
        Assert.Equal(2, output.Count);

        output.Clear();
        // 82 82 then literal-with-indexing "a: b" at the end, after the limit is crossed.
        Assert.Throws<HpackException>(() => decoder.Decode([0x82, 0x82, 0x82, 0x40, 0x01, 0x61, 0x01, 0x62], output));
        Assert.Equal(1, decoder.Table.Count);
        Assert.Equal(new HeaderField("a", "b"), decoder.Table[0].Field);

        // A single huge value from one small block: amplification via the dynamic table is bounded.
        decoder = new HpackDecoder(maxHeaderListSize: 65536);
        byte[] block = new byte[1 + 1 + 3 + 2 + 4000];
        block[0] = 0x40; block[1] = 0x01; block[2] = (byte)'x';
        int n = 3 + WriteLength(block.AsSpan(3), 4000);
        block.AsSpan(n, 4000).Fill((byte)'v');
        decoder.Decode(block.AsSpan(0, n + 4000), new List<HeaderField>());
        byte[] repeat = Enumerable.Repeat((byte)0xbe, 100).ToArray(); // 100 * 4033 > 65536
        output.Clear();
        Assert.Throws<HpackException>(() => decoder.Decode(repeat, output));
        Assert.True(output.Count <= 16);
    }

    [Fact]
    public void EncoderEmitsSizeUpdatesAfterSettingsChange()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var buffer = new ArrayBufferWriter<byte>();
        var output = new List<HeaderField>();
        HeaderField[] headers = [new("x-a", "1"), new("x-b", "2")];
        encoder.Encode(headers, buffer);
        decoder.Decode(buffer.WrittenSpan, output);

        // Peer lowers to 0 then raises to 2000 before our next block: both updates, smallest first.
        decoder.MaxDynamicTableSize = 0;
        encoder.SetMaxDynamicTableSize(0);
        decoder.MaxDynamicTableSize = 2000;
        encoder.SetMaxDynamicTableSize(2000);
        buffer.ResetWrittenCount();
        encoder.Encode(headers, buffer);
        Assert.Equal("203fb10f", Convert.ToHexStringLower(buffer.WrittenSpan[..4]));
        output.Clear();
        decoder.Decode(buffer.WrittenSpan, output);
        Assert.Equal(headers, output);
        Assert.Equal(2000, decoder.Table.MaxSize);

        // No change, no update.
        encoder.SetMaxDynamicTableSize(2000);
        buffer.ResetWrittenCount();
        encoder.Encode(headers, buffer);
        Assert.Equal(0x80, buffer.WrittenSpan[0] & 0x80); // starts with an indexed field

        // The encoder never grows beyond its own limit (the constructor value).
        encoder.SetMaxDynamicTableSize(1 << 20);
        Assert.Equal(4096, encoder.Table.MaxSize);
    }

    private static int WriteLength(Span<byte> destination, int length) => IntegerCodec.Encode(destination, length, 7, 0);
}
