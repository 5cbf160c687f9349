using System.Text.RegularExpressions;

namespace Hull.Images.Reference;

/// <summary>
/// The image reference grammar of distribution/reference (regexp.go), written out for .NET:
/// <c>\w</c> and <c>[[:xdigit:]]</c> are spelled as ASCII classes because .NET's are Unicode.
/// </summary>
internal static partial class ReferenceGrammar
{
    public const int NameTotalLengthMax = 255;

    private const string Alphanumeric = "[a-z0-9]+";
    private const string Separator = "(?:[._]|__|[-]+)";
    private const string PathComponent = Alphanumeric + "(?:" + Separator + Alphanumeric + ")*";
    private const string RemoteName = PathComponent + "(?:/" + PathComponent + ")*";
    private const string DomainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    private const string DomainName = DomainNameComponent + "(?:\\." + DomainNameComponent + ")*";
    private const string Ipv6Address = "\\[(?:[a-fA-F0-9:]+)\\]";
    private const string DomainAndPort = "(?:" + DomainName + "|" + Ipv6Address + ")(?::[0-9]+)?";
    private const string Tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    private const string Digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    private const string Name = "(?:" + DomainAndPort + "/)?" + RemoteName;

    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture;

    /// <summary>name[:tag][@digest] with groups <c>name</c>, <c>tag</c>, <c>digest</c>.</summary>
    [GeneratedRegex("^(?<name>" + Name + ")(?::(?<tag>" + Tag + "))?(?:@(?<digest>" + Digest + "))?$", Options)]
    public static partial Regex Reference();

    /// <summary>A name split into <c>domain</c> (optional) and <c>path</c>.</summary>
    [GeneratedRegex("^(?:(?<domain>" + DomainAndPort + ")/)?(?<path>" + RemoteName + ")$", Options)]
    public static partial Regex AnchoredName();

    /// <summary>A 64-character hex string: an image ID, which is never a repository name.</summary>
    [GeneratedRegex("^[a-f0-9]{64}$", Options)]
    public static partial Regex AnchoredIdentifier();

    [GeneratedRegex("^" + Tag + "$", Options)]
    public static partial Regex AnchoredTag();
}
