using System.Text;

namespace Hull.Images.Registry;

/// <summary>
/// One challenge of a <c>WWW-Authenticate</c> header (RFC 7235), e.g.
/// <c>Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"</c>.
/// </summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? Realm => Get("realm");

    public string? Service => Get("service");

    public string? Scope => Get("scope");

    /// <summary>The <c>error</c> parameter; <c>insufficient_scope</c> means the token lacks the needed access.</summary>
    public string? Error => Get("error");

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public string? Get(string name) => Parameters.TryGetValue(name, out string? value) ? value : null;

    /// <summary>Parses all challenges of all header values; malformed parts are skipped rather than failing the request.</summary>
    public static IReadOnlyList<AuthChallenge> Parse(IEnumerable<string> headerValues)
    {
        var challenges = new List<AuthChallenge>();
        foreach (string value in headerValues) challenges.AddRange(Parse(value));
        return challenges;
    }

    public static IReadOnlyList<AuthChallenge> Parse(string headerValue)
    {
        var challenges = new List<AuthChallenge>();
        var reader = new Reader(headerValue);
        while (true)
        {
            reader.SkipSeparators();
            string scheme = reader.ReadToken();
            if (scheme.Length == 0) break;

            var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            while (true)
            {
                reader.SkipSeparators();
                int mark = reader.Position;
                string name = reader.ReadToken();
                if (name.Length == 0) break;
                reader.SkipSpaces();
                if (!reader.TryConsume('='))
                {
                    // A bare token after a comma starts the next challenge.
                    reader.Position = mark;
                    break;
                }
                reader.SkipSpaces();
                string? paramValue = reader.Peek == '"' ? reader.ReadQuoted() : reader.ReadToken();
                if (paramValue is null) break;
                parameters[name] = paramValue;
            }
            challenges.Add(new AuthChallenge(scheme, parameters));
        }
        return challenges;
    }

    private struct Reader(string text)
    {
        public int Position = 0;

        public readonly char Peek => Position < text.Length ? text[Position] : '\0';

        public void SkipSpaces()
        {
            while (Position < text.Length && text[Position] is ' ' or '\t') Position++;
        }

        public void SkipSeparators()
        {
            while (Position < text.Length && text[Position] is ' ' or '\t' or ',') Position++;
        }

        public bool TryConsume(char c)
        {
            if (Peek != c) return false;
            Position++;
            return true;
        }

        // RFC 7230 tchar; also '/' and '=' padding of token68 would end here, which is fine for Basic/Bearer.
        public string ReadToken()
        {
            int start = Position;
            while (Position < text.Length && IsTokenChar(text[Position])) Position++;
            return text[start..Position];
        }

        public string? ReadQuoted()
        {
            Position++; // opening quote
            var sb = new StringBuilder();
            while (Position < text.Length)
            {
                char c = text[Position++];
                if (c == '"') return sb.ToString();
                if (c == '\\' && Position < text.Length) c = text[Position++];
                sb.Append(c);
            }
            return null; // unterminated
        }

        private static bool IsTokenChar(char c) =>
            c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
                or '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~' or ':' or '/';
    }
}
