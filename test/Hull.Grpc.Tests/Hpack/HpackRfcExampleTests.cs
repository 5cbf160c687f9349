using System.Buffers;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Tests.Hpack;

/// <summary>RFC 7541 Appendix C examples, plus sanity checks of the Appendix B code table.</summary>
public class HpackRfcExampleTests
{
    private static readonly HeaderField[] Request1 =
        [new(":method", "GET"), new(":scheme", "http"), new(":path", "/"), new(":authority", "www.example.com")];

    private static readonly HeaderField[] Request2 =
        [.. Request1, new("cache-control", "no-cache")];

    private static readonly HeaderField[] Request3 =
        [new(":method", "GET"), new(":scheme", "https"), new(":path", "/index.html"), new(":authority", "www.example.com"), new("custom-key", "custom-value")];

    private static readonly HeaderField[] Response1 =
        [new(":status", "302"), new("cache-control", "private"), new("date", "Mon, 21 Oct 2013 20:13:21 GMT"), new("location", "https://www.example.com")];

    private static readonly HeaderField[] Response2 =
        [new(":status", "307"), new("cache-control", "private"), new("date", "Mon, 21 Oct 2013 20:13:21 GMT"), new("location", "https://www.example.com")];

    private static readonly HeaderField[] Response3 =
    [
        new(":status", "200"), new("cache-control", "private"), new("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        new("location", "https://www.example.com"), new("content-encoding", "gzip"),
        new("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
    ];

    // Expected dynamic tables after each block, newest first.
    private static readonly (string, string)[] RequestTable1 = [(":authority", "www.example.com")];
    private static readonly (string, string)[] RequestTable2 = [("cache-control", "no-cache"), .. RequestTable1];
    private static readonly (string, string)[] RequestTable3 = [("custom-key", "custom-value"), .. RequestTable2];
    private static readonly (string, string)[] ResponseTable1 =
        [("location", "https://www.example.com"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("cache-control", "private"), (":status", "302")];
    private static readonly (string, string)[] ResponseTable2 =
        [(":status", "307"), ("location", "https://www.example.com"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("cache-control", "private")];
    private static readonly (string, string)[] ResponseTable3 =
        [("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"), ("content-encoding", "gzip"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT")];

    // C.3 requests without Huffman.
    private const string C31 = "828684410f7777772e6578616d706c652e636f6d";
    private const string C32 = "828684be58086e6f2d6361636865";
    private const string C33 = "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565";

    // C.4 requests with Huffman.
    private const string C41 = "828684418cf1e3c2e5f23a6ba0ab90f4ff";
    private const string C42 = "828684be5886a8eb10649cbf";
    private const string C43 = "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf";

    // C.5 responses without Huffman, table size 256.
    private const string C51 =
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54" +
        "6e1768747470733a2f2f7777772e6578616d706c652e636f6d";
    private const string C52 = "4803333037c1c0bf";
    private const string C53 =
        "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d" +
        "4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b207665" +
        "7273696f6e3d31";

    // C.6 responses with Huffman, table size 256.
    private const string C61 =
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3";
    private const string C62 = "4883640effc1c0bf";
    private const string C63 =
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007";

    public static TheoryData<string, int, string[], int[]> DecoderSequences() => new()
    {
        { "C.3", 4096, [C31, C32, C33], [57, 110, 164] },
        { "C.4", 4096, [C41, C42, C43], [57, 110, 164] },
        { "C.5", 256, [C51, C52, C53], [222, 222, 215] },
        { "C.6", 256, [C61, C62, C63], [222, 222, 215] },
    };

    [Theory]
    [MemberData(nameof(DecoderSequences))]
    public void DecodesAppendixC(string section, int tableSize, string[] blocks, int[] tableSizes)
    {
        bool requests = section is "C.3" or "C.4";
        HeaderField[][] headers = requests ? [Request1, Request2, Request3] : [Response1, Response2, Response3];
        (string, string)[][] tables = requests
            ? [RequestTable1, RequestTable2, RequestTable3]
            : [ResponseTable1, ResponseTable2, ResponseTable3];

        var decoder = new HpackDecoder(tableSize);
        for (int i = 0; i < blocks.Length; i++)
        {
            var output = new List<HeaderField>();
            decoder.Decode(Convert.FromHexString(blocks[i]), output);
            Assert.Equal(headers[i], output);
            Assert.Equal(tables[i], Entries(decoder.Table));
            Assert.Equal(tableSizes[i], decoder.Table.Size);
        }
    }

    public static TheoryData<string, int, bool, string[]> EncoderSequences() => new()
    {
        { "C.3", 4096, false, [C31, C32, C33] },
        { "C.4", 4096, true, [C41, C42, C43] },
        { "C.5", 256, false, [C51, C52, C53] },
        // The RFC Huffman-codes "307" although that is no shorter (3 octets either way); we only
        // use Huffman when it is strictly shorter, so C.6.2 carries the literal "307".
        { "C.6", 256, true, [C61, "4803333037c1c0bf", C63] },
    };

    [Theory]
    [MemberData(nameof(EncoderSequences))]
    public void EncodesAppendixC(string section, int tableSize, bool huffman, string[] blocks)
    {
        HeaderField[][] headers = section is "C.3" or "C.4" ? [Request1, Request2, Request3] : [Response1, Response2, Response3];
        var encoder = new HpackEncoder(tableSize) { UseHuffman = huffman };
        for (int i = 0; i < blocks.Length; i++)
        {
            var buffer = new ArrayBufferWriter<byte>();
            encoder.Encode(headers[i], buffer);
            Assert.Equal(blocks[i], Convert.ToHexStringLower(buffer.WrittenSpan));
        }
    }

    [Fact]
    public void DecodesC2LiteralRepresentations()
    {
        // C.2.1 literal with indexing: enters the table.
        var decoder = new HpackDecoder();
        var output = new List<HeaderField>();
        decoder.Decode(Convert.FromHexString("400a637573746f6d2d6b65790d637573746f6d2d686561646572"), output);
        Assert.Equal([new HeaderField("custom-key", "custom-header")], output);
        Assert.Equal([("custom-key", "custom-header")], Entries(decoder.Table));
        Assert.Equal(55, decoder.Table.Size);

        // C.2.2 literal without indexing.
        decoder = new HpackDecoder();
        output.Clear();
        decoder.Decode(Convert.FromHexString("040c2f73616d706c652f70617468"), output);
        Assert.Equal([new HeaderField(":path", "/sample/path")], output);
        Assert.Equal(0, decoder.Table.Count);

        // C.2.3 never indexed.
        output.Clear();
        decoder.Decode(Convert.FromHexString("100870617373776f726406736563726574"), output);
        Assert.Equal([new HeaderField("password", "secret")], output);
        Assert.Equal(0, decoder.Table.Count);

        // C.2.4 indexed.
        output.Clear();
        decoder.Decode([0x82], output);
        Assert.Equal([new HeaderField(":method", "GET")], output);
        Assert.Equal(0, decoder.Table.Count);
    }

    [Fact]
    public void EncoderNeverIndexesCredentials()
    {
        var encoder = new HpackEncoder();
        var buffer = new ArrayBufferWriter<byte>();
        encoder.Encode([new HeaderField("authorization", "Bearer abc")], buffer);
        // 0x1f 0x08: never indexed (0001), name index 23 = 15 + 8.
        Assert.Equal(0x1f, buffer.WrittenSpan[0]);
        Assert.Equal(0x08, buffer.WrittenSpan[1]);
        Assert.Equal(0, encoder.Table.Count);
    }

    [Theory]
    [InlineData(10, 5, "0a")]     // C.1.1
    [InlineData(1337, 5, "1f9a0a")] // C.1.2
    [InlineData(42, 8, "2a")]     // C.1.3
    [InlineData(31, 5, "1f00")]
    [InlineData(int.MaxValue, 7, "7f80ffffff07")]
    public void IntegersRoundTrip(int value, int prefixBits, string hex)
    {
        Span<byte> buffer = stackalloc byte[IntegerCodec.MaxLength];
        int n = IntegerCodec.Encode(buffer, value, prefixBits, 0);
        Assert.Equal(hex, Convert.ToHexStringLower(buffer[..n]));

        int pos = 0;
        Assert.Equal(value, IntegerCodec.Decode(buffer[..n], ref pos, prefixBits));
        Assert.Equal(n, pos);
    }

    [Fact]
    public void HuffmanTableIsCanonicalAndComplete()
    {
        // Appendix B is a canonical code: sorted by (length, symbol), each code is the previous
        // plus one, shifted to the new length. A typo in the table breaks this.
        ReadOnlySpan<uint> codes = Huffman.Codes;
        ReadOnlySpan<byte> lengths = Huffman.Lengths;
        Assert.Equal(257, codes.Length);
        Assert.Equal(257, lengths.Length);
        byte[] lengthArray = lengths.ToArray();
        int[] order = Enumerable.Range(0, 257).OrderBy(s => lengthArray[s]).ThenBy(s => s).ToArray();
        uint expected = 0;
        for (int i = 0; i < order.Length; i++)
        {
            if (i > 0)
            {
                expected = (expected + 1) << (lengths[order[i]] - lengths[order[i - 1]]);
            }

            Assert.Equal(expected, codes[order[i]]);
        }

        Assert.Equal(0x3fffffffu, codes[Huffman.Eos]);
        Assert.Equal(30, lengths[Huffman.Eos]);
    }

    [Fact]
    public void HuffmanRoundTripsEveryOctet()
    {
        byte[] all = Enumerable.Range(0, 256).Select(i => (byte)i).Concat(Enumerable.Range(0, 256).Select(i => (byte)(255 - i))).ToArray();
        for (int len = 0; len <= all.Length; len += 7)
        {
            ReadOnlySpan<byte> input = all.AsSpan(0, len);
            byte[] encoded = new byte[Huffman.GetEncodedLength(input)];
            Assert.Equal(encoded.Length, Huffman.Encode(input, encoded));
            byte[] decoded = new byte[Huffman.GetMaxDecodedLength(encoded.Length)];
            int n = Huffman.Decode(encoded, decoded);
            Assert.Equal(input.ToArray(), decoded[..n]);
        }
    }

    private static (string, string)[] Entries(DynamicTable table) =>
        Enumerable.Range(0, table.Count).Select(i => (table[i].Field.Name, table[i].Field.Value)).ToArray();
}
