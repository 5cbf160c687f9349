using System.Diagnostics;
using System.Text;
using Hull.Config.TomlFiles;

namespace Hull.Config.Tests.Toml;

/// <summary>
/// Seeded mutation fuzzing over the valid suite cases: every mutant must either load or fail with a
/// <see cref="ConfigException"/> (nothing else may escape Tomlyn or Hull's tree building), and whatever loads must
/// survive a writer round trip.
/// </summary>
public sealed class TomlFuzzTests
{
    private const int Seed = 20_240_229;
    private const int Iterations = 4000;

    // Bytes that matter to the grammar, plus a few that must be rejected (CR, NUL, DEL, bad UTF-8).
    private static readonly byte[] Interesting = Encoding.ASCII.GetBytes("[]{}\"'=.,#\\\n\r\t _-+:0123456789eExobTZtfinau")
        .Concat(new byte[] { 0x00, 0x7F, 0x80, 0xC3, 0xA9, 0xEF, 0xBB, 0xBF, 0xFF })
        .ToArray();

    [Fact]
    public void MutatedValidDocumentsLoadOrThrowConfigExceptionOnly()
    {
        string root = TomlTestSuite.RequireRoot();
        byte[][] corpus = TomlTestSuite.Cases("valid")
            .Select(name => File.ReadAllBytes(Path.Combine(root, name + ".toml")))
            .ToArray();
        var random = new Random(Seed);
        var budget = Stopwatch.StartNew();
        int parsed = 0;

        for (int i = 0; i < Iterations && budget.Elapsed < TimeSpan.FromSeconds(5); i++)
        {
            byte[] input = Mutate(corpus[random.Next(corpus.Length)], random);
            try
            {
                ConfigDocument document = ConfigDocument.ParseUtf8(input, "fuzz");
                parsed++;
                string written = TomlText.Write(document.Root);
                string? diff = TomlTreeComparer.Diff(document.Root, ConfigDocument.Parse(written, "fuzz-rewritten").Root);
                Assert.True(diff is null, $"round trip differs for iteration {i}: {diff}\n{Show(input)}");
            }
            catch (ConfigException)
            {
                // Expected for most mutants.
            }
            catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"iteration {i} (seed {Seed}) threw {ex.GetType().Name}: {ex.Message}\n{Show(input)}\n{ex}");
            }
        }

        // Guard against a fuzzer that only ever produces garbage (or a parser that rejects everything).
        Assert.True(parsed > 50, $"only {parsed} mutants parsed; the fuzzer is not exercising the valid paths");
    }

    private static byte[] Mutate(byte[] source, Random random)
    {
        var bytes = new List<byte>(source);
        int mutations = random.Next(1, 4);
        for (int m = 0; m < mutations; m++)
        {
            int at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0 when bytes.Count > 0:
                    bytes.RemoveAt(at);
                    break;
                case 1:
                    bytes.Insert(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 2 when bytes.Count > 0:
                    bytes[at] = Interesting[random.Next(Interesting.Length)];
                    break;
                case 3 when bytes.Count > 0:
                    // Duplicate a slice (repeats keys, headers and brackets).
                    int length = random.Next(1, Math.Min(40, bytes.Count - at) + 1);
                    bytes.InsertRange(random.Next(bytes.Count), bytes.GetRange(at, length));
                    break;
                case 4 when bytes.Count > 0:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                default:
                    bytes.Insert(at, (byte)random.Next(256));
                    break;
            }
        }

        return [.. bytes];
    }

    private static string Show(byte[] input) => "input (base64): " + Convert.ToBase64String(input);
}
