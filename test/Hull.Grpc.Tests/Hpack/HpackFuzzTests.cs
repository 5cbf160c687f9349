using System.Buffers;
using System.Diagnostics;
using System.Text;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Tests.Hpack;

/// <summary>
/// Seeded property tests: arbitrary input never escapes as anything but <see cref="HpackException"/>,
/// and random header lists survive an encode/decode round trip.
/// </summary>
public class HpackFuzzTests
{
    [Fact]
    public void RandomBytesOnlyThrowHpackException()
    {
        var rng = new Random(7541);
        var output = new List<HeaderField>();
        var stateful = new HpackDecoder(maxHeaderListSize: 1 << 20);
        for (int i = 0; i < 20_000; i++)
        {
            byte[] block = new byte[rng.Next(0, 64)];
            rng.NextBytes(block);
            // Bias towards structure: literal-with-indexing and size-update prefixes reach deeper code.
            if (block.Length > 0 && rng.Next(4) == 0)
            {
                block[0] = (byte)((block[0] & 0x3F) | 0x40);
            }

            DecodeExpectingOnlyHpackException(new HpackDecoder(), block, output);
            if (!DecodeExpectingOnlyHpackException(stateful, block, output))
            {
                stateful = new HpackDecoder(maxHeaderListSize: 1 << 20);
            }
        }
    }

    [Fact]
    public void MutatedStoryBlocksOnlyThrowHpackException()
    {
        HpackTestData.RequireCorpus();
        var rng = new Random(9113);
        var output = new List<HeaderField>();
        var stopwatch = Stopwatch.StartNew(); // reported, not asserted: wall-clock limits flake on busy CI
        int mutations = 0;
        int accepted = 0;
        var stories = HpackTestData.WireDirectories()
            .SelectMany(d => HpackTestData.StoryFiles(Path.Combine(HpackTestData.CorpusDirectory, d)))
            .Select(HpackTestData.LoadStory)
            .ToList();
        long loadMs = stopwatch.ElapsedMilliseconds;

        while (mutations < 20_000)
        {
            foreach (List<StoryCase> story in stories.TakeWhile(_ => mutations < 20_000))
            {
                var reference = new HpackDecoder();
                foreach (StoryCase c in story)
                {
                    if (c.HeaderTableSize is int size)
                    {
                        reference.MaxDynamicTableSize = size;
                    }

                    if (mutations < 20_000 && rng.Next(2) == 0)
                    {
                        // Mutate against a decoder holding the same dynamic table as the reference, so
                        // indexes in the mutated block still resolve and decoding gets deep.
                        byte[] mutated = Mutate(c.Wire!, rng);
                        mutations++;
                        if (DecodeExpectingOnlyHpackException(reference.Clone(), mutated, output))
                        {
                            accepted++;
                        }
                    }

                    output.Clear();
                    reference.Decode(c.Wire, output);
                }
            }
        }

        // Sanity: some mutations (e.g. flips inside string literals) must still decode.
        Assert.InRange(accepted, 1, mutations - 1);
        Console.WriteLine($"{mutations} mutations, {accepted} decoded, {stopwatch.ElapsedMilliseconds} ms ({loadMs} ms loading)");
    }

    [Fact]
    public void RandomHeaderListsRoundTrip()
    {
        var rng = new Random(2024);
        string[] names = ["content-type", "grpc-status", "grpc-message", ":path", "x-trace", "cookie", "authorization", "x-ünïcode", "te", "user-agent"];
        string[] values = ["application/grpc", "0", "", "trailers", "/hull.Runtime/CreateContainer", "héllo wörld ✓", "a", new string('z', 3000)];
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder(maxHeaderListSize: 1 << 20);
        var buffer = new ArrayBufferWriter<byte>();
        var output = new List<HeaderField>();
        for (int i = 0; i < 2_000; i++)
        {
            if (rng.Next(50) == 0)
            {
                int size = rng.Next(5) switch { 0 => 0, 1 => 64, 2 => 4096, _ => rng.Next(0, 5000) };
                decoder.MaxDynamicTableSize = size;
                encoder.SetMaxDynamicTableSize(size);
            }

            var headers = new List<HeaderField>();
            int count = rng.Next(0, 12);
            for (int j = 0; j < count; j++)
            {
                string name = rng.Next(5) == 0 ? "x-" + RandomText(rng, 8) : names[rng.Next(names.Length)];
                string value = rng.Next(4) == 0 ? RandomText(rng, 40) : values[rng.Next(values.Length)];
                headers.Add(new HeaderField(name, value));
            }

            buffer.ResetWrittenCount();
            encoder.Encode(headers, buffer);
            output.Clear();
            decoder.Decode(buffer.WrittenSpan, output);
            Assert.Equal(headers, output);
            HpackRoundTripTests.AssertSameTable(encoder.Table, decoder.Table);
        }
    }

    private static string RandomText(Random rng, int maxLength)
    {
        var sb = new StringBuilder();
        int length = rng.Next(0, maxLength);
        for (int i = 0; i < length; i++)
        {
            // Mostly printable ASCII with some multi-octet UTF-8 characters.
            sb.Append(rng.Next(10) == 0 ? (char)rng.Next(0xA0, 0x3000) : (char)rng.Next(0x20, 0x7F));
        }

        return sb.ToString();
    }

    private static byte[] Mutate(byte[] wire, Random rng)
    {
        var bytes = new List<byte>(wire);
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits; e++)
        {
            switch (rng.Next(6))
            {
                case 0 when bytes.Count > 0: // bit flip
                    int i = rng.Next(bytes.Count);
                    bytes[i] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1 when bytes.Count > 0: // truncation
                    int keep = rng.Next(bytes.Count);
                    bytes.RemoveRange(keep, bytes.Count - keep);
                    break;
                case 2: // insertion of random octets
                    byte[] insert = new byte[1 + rng.Next(4)];
                    rng.NextBytes(insert);
                    bytes.InsertRange(rng.Next(bytes.Count + 1), insert);
                    break;
                case 3 when bytes.Count > 0: // deletion
                    int at = rng.Next(bytes.Count);
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + rng.Next(4)));
                    break;
                case 4 when bytes.Count > 0: // overwrite with an interesting octet
                    bytes[rng.Next(bytes.Count)] = (byte)(rng.Next(3) switch { 0 => 0xFF, 1 => 0x80, _ => 0x20 | rng.Next(32) });
                    break;
                default: // duplicate a chunk
                    if (bytes.Count > 0)
                    {
                        int start = rng.Next(bytes.Count);
                        int len = Math.Min(bytes.Count - start, 1 + rng.Next(16));
                        bytes.InsertRange(rng.Next(bytes.Count + 1), bytes.GetRange(start, len));
                    }

                    break;
            }
        }

        return bytes.ToArray();
    }

    /// <returns>true if the block decoded, false if it was rejected with <see cref="HpackException"/>.</returns>
    private static bool DecodeExpectingOnlyHpackException(HpackDecoder decoder, byte[] block, List<HeaderField> output)
    {
        output.Clear();
        try
        {
            decoder.Decode(block, output);
            return true;
        }
        catch (HpackException)
        {
            return false;
        }
        catch (Exception e)
        {
            Assert.Fail($"{e.GetType().Name} for block {Convert.ToHexStringLower(block)}: {e}");
            return false;
        }
    }
}
