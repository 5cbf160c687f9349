using System.Buffers;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Tests.Hpack;

/// <summary>Encodes the corpus' header lists with <see cref="HpackEncoder"/> and decodes them back.</summary>
public class HpackRoundTripTests
{
    public static IEnumerable<object[]> AllStories() =>
        HpackTestData.StoryRows(HpackTestData.WireDirectories().Prepend("raw-data"));

    [Theory]
    [MemberData(nameof(AllStories))]
    public void RoundTripsStory(string dir, string story)
    {
        HpackTestData.FailIfMissing(dir, story);
        List<StoryCase> cases = HpackTestData.LoadStory(dir, story);
        Assert.NotEmpty(cases);

        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var buffer = new ArrayBufferWriter<byte>();
        var output = new List<HeaderField>();
        foreach (StoryCase c in cases)
        {
            if (c.HeaderTableSize is int size)
            {
                decoder.MaxDynamicTableSize = size; // we advertise it...
                encoder.SetMaxDynamicTableSize(size); // ...and the peer's encoder applies it
            }

            buffer.ResetWrittenCount();
            encoder.Encode(c.Headers, buffer);
            output.Clear();
            decoder.Decode(buffer.WrittenSpan, output);
            Assert.True(c.Headers.SequenceEqual(output),
                $"{dir}/{story} seqno {c.Seqno}: expected [{HpackConformanceTests.Format(c.Headers)}] got [{HpackConformanceTests.Format(output)}]");
            // Both sides must agree on the table after every block.
            AssertSameTable(encoder.Table, decoder.Table);
        }
    }

    /// <summary>Our encoder should compress the corpus about as well as nghttp2 does.</summary>
    [Fact]
    public void CompressesComparablyToNghttp2()
    {
        HpackTestData.RequireCorpus();
        long ours = 0;
        long theirs = 0;
        long raw = 0;
        foreach (string file in HpackTestData.StoryFiles(Path.Combine(HpackTestData.CorpusDirectory, "nghttp2")))
        {
            var encoder = new HpackEncoder();
            var buffer = new ArrayBufferWriter<byte>();
            foreach (StoryCase c in HpackTestData.LoadStory(file))
            {
                encoder.Encode(c.Headers, buffer);
                theirs += c.Wire!.Length;
                raw += c.Headers.Sum(h => h.Name.Length + h.Value.Length + 4);
            }

            ours += buffer.WrittenCount;
        }

        Console.WriteLine($"corpus: ours {ours} octets, nghttp2 {theirs}, plain {raw}");
        Assert.True(ours <= theirs * 105 / 100, $"ours {ours} octets, nghttp2 {theirs}, plain {raw}");
    }

    internal static void AssertSameTable(DynamicTable expected, DynamicTable actual)
    {
        Assert.Equal(expected.MaxSize, actual.MaxSize);
        Assert.Equal(expected.Size, actual.Size);
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Field, actual[i].Field);
        }
    }
}
