using System.Text.Json;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Tests.Hpack;

/// <summary>One case of an hpack-test-case story (github.com/http2jp/hpack-test-case).</summary>
internal sealed record StoryCase(int Seqno, int? HeaderTableSize, byte[]? Wire, List<HeaderField> Headers);

/// <summary>Locates and parses the shared hpack-test-case corpus.</summary>
internal static class HpackTestData
{
    public const string MissingMarker = "<missing>";

    /// <summary>
    /// The corpus directory: $HULL_SHARED_DIR/testdata/hpack-test-case, else
    /// &lt;repo root&gt;/../shared/testdata/hpack-test-case where the repo root holds Hull.sln.
    /// </summary>
    public static string CorpusDirectory
    {
        get
        {
            string? shared = Environment.GetEnvironmentVariable("HULL_SHARED_DIR");
            if (string.IsNullOrEmpty(shared))
            {
                string? root = FindRepoRoot();
                if (root is null)
                {
                    return Path.Combine(AppContext.BaseDirectory, "(no Hull.sln found above this directory)");
                }

                shared = Path.Combine(root, "..", "shared");
            }

            return Path.GetFullPath(Path.Combine(shared, "testdata", "hpack-test-case"));
        }
    }

    /// <summary>Why the corpus is unusable, or null if it looks complete.</summary>
    public static string? MissingReason()
    {
        string dir = CorpusDirectory;
        if (!Directory.Exists(dir))
        {
            return $"HPACK test corpus not found at '{dir}'. Expected <repo root>/../shared/testdata/hpack-test-case " +
                   "(the repo root contains Hull.sln) or set HULL_SHARED_DIR to the directory that contains testdata/.";
        }

        if (!Directory.Exists(Path.Combine(dir, "raw-data")) || WireDirectories().Count == 0)
        {
            return $"HPACK test corpus at '{dir}' is incomplete: need raw-data/ and at least one implementation directory with wire data.";
        }

        return null;
    }

    /// <summary>Implementation directories whose stories carry "wire" (everything except raw-data).</summary>
    public static List<string> WireDirectories()
    {
        var result = new List<string>();
        string dir = CorpusDirectory;
        if (!Directory.Exists(dir))
        {
            return result;
        }

        foreach (string sub in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
        {
            string? first = StoryFiles(sub).FirstOrDefault();
            if (first is not null && File.ReadAllText(first).Contains("\"wire\"", StringComparison.Ordinal))
            {
                result.Add(Path.GetFileName(sub));
            }
        }

        return result;
    }

    public static IEnumerable<string> StoryFiles(string directory) =>
        Directory.GetFiles(directory, "story_*.json").Order(StringComparer.Ordinal);

    /// <summary>Theory rows (dir, story) for every story in <paramref name="dirs"/>, or one marker row if the corpus is missing.</summary>
    public static IEnumerable<object[]> StoryRows(IEnumerable<string> dirs)
    {
        if (MissingReason() is { } reason)
        {
            return [[MissingMarker, reason]];
        }

        var rows = new List<object[]>();
        foreach (string d in dirs)
        {
            foreach (string file in StoryFiles(Path.Combine(CorpusDirectory, d)))
            {
                rows.Add([d, Path.GetFileName(file)]);
            }
        }

        return rows;
    }

    /// <summary>Fails the calling test (never skips) with the reason when the corpus is unusable.</summary>
    public static void RequireCorpus()
    {
        if (MissingReason() is { } reason)
        {
            Assert.Fail(reason);
        }
    }

    /// <summary>Fails the calling test (never skips) when a theory got the missing-corpus marker row.</summary>
    public static void FailIfMissing(string dir, string story)
    {
        if (dir == MissingMarker)
        {
            Assert.Fail(story);
        }
    }

    public static List<StoryCase> LoadStory(string dir, string story) =>
        LoadStory(Path.Combine(CorpusDirectory, dir, story));

    public static List<StoryCase> LoadStory(string path)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var cases = new List<StoryCase>();
        foreach (JsonElement c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            int? tableSize = c.TryGetProperty("header_table_size", out JsonElement t) ? t.GetInt32() : null;
            byte[]? wire = c.TryGetProperty("wire", out JsonElement w) ? Convert.FromHexString(w.GetString()!) : null;
            var headers = new List<HeaderField>();
            foreach (JsonElement h in c.GetProperty("headers").EnumerateArray())
            {
                // Each header is a one-property object; arrays keep order and duplicates.
                foreach (JsonProperty p in h.EnumerateObject())
                {
                    headers.Add(new HeaderField(p.Name, p.Value.GetString()!));
                }
            }

            // raw-data has no seqno; its array order is the sequence.
            int seqno = c.TryGetProperty("seqno", out JsonElement s) ? s.GetInt32() : cases.Count;
            cases.Add(new StoryCase(seqno, tableSize, wire, headers));
        }

        return cases.OrderBy(c => c.Seqno).ToList(); // stable, unlike List.Sort
    }

    private static string? FindRepoRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Hull.sln")))
            {
                return d.FullName;
            }
        }

        return null;
    }
}
