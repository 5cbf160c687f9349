namespace Hull.Runtime.Spec;

/// <summary>
/// A runtime handler's annotation allow-lists (<c>pod_annotations</c>, <c>container_annotations</c>): patterns matched
/// as containerd matches them (Go's path.Match: '*' is any run of characters but '/', '?' is one such character).
/// </summary>
public static class AnnotationPatterns
{
    /// <summary>The annotations whose key some pattern matches.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Select(IReadOnlyDictionary<string, string> annotations, IReadOnlyList<string> patterns) =>
        patterns.Count == 0 ? [] : annotations.Where(a => patterns.Any(p => Matches(p, a.Key)));

    public static bool Matches(string pattern, string key) => Matches(pattern.AsSpan(), key.AsSpan());

    private static bool Matches(ReadOnlySpan<char> pattern, ReadOnlySpan<char> key)
    {
        while (pattern.Length > 0)
        {
            char p = pattern[0];
            if (p == '*')
            {
                var rest = pattern[1..];
                for (int i = 0; ; i++)
                {
                    if (Matches(rest, key[i..])) return true;
                    if (i == key.Length || key[i] == '/') return false;
                }
            }
            if (key.Length == 0 || key[0] == '/' && p != '/' || p != '?' && p != key[0]) return false;
            pattern = pattern[1..];
            key = key[1..];
        }
        return key.Length == 0;
    }
}
