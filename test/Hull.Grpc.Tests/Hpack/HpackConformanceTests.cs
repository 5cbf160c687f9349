using Hull.Grpc.Hpack;

namespace Hull.Grpc.Tests.Hpack;

/// <summary>Decodes every wire story of the hpack-test-case corpus (one decoder per story).</summary>
public class HpackConformanceTests
{
    public static IEnumerable<object[]> WireStories() => HpackTestData.StoryRows(HpackTestData.WireDirectories());

    [Fact]
    public void CorpusIsPresent()
    {
        HpackTestData.RequireCorpus();
        // go-hpack, haskell-http2-linear-huffman, nghttp2, nghttp2-change-table-size, python-hpack at the time of writing.
        Assert.True(HpackTestData.WireDirectories().Count >= 5, string.Join(", ", HpackTestData.WireDirectories()));
    }

    [Theory]
    [MemberData(nameof(WireStories))]
    public void DecodesStory(string dir, string story)
    {
        HpackTestData.FailIfMissing(dir, story);
        List<StoryCase> cases = HpackTestData.LoadStory(dir, story);
        Assert.NotEmpty(cases);

        var decoder = new HpackDecoder();
        var output = new List<HeaderField>();
        foreach (StoryCase c in cases)
        {
            Assert.True(c.Wire is not null, $"{dir}/{story} seqno {c.Seqno} has no wire data");
            if (c.HeaderTableSize is int size)
            {
                // The SETTINGS_HEADER_TABLE_SIZE acknowledged just before this block.
                decoder.MaxDynamicTableSize = size;
            }

            output.Clear();
            try
            {
                decoder.Decode(c.Wire, output);
            }
            catch (HpackException e)
            {
                Assert.Fail($"{dir}/{story} seqno {c.Seqno}: {e.Message}");
            }

            Assert.True(c.Headers.SequenceEqual(output),
                $"{dir}/{story} seqno {c.Seqno}: expected [{Format(c.Headers)}] got [{Format(output)}]");
        }
    }

    internal static string Format(IEnumerable<HeaderField> headers) =>
        string.Join(", ", headers.Select(h => $"{h.Name}: {h.Value}"));
}
