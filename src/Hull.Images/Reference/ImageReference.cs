using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Hull.Core;

namespace Hull.Images.Reference;

/// <summary>
/// A parsed image reference: <c>domain/path[:tag][@digest]</c>. Parsing and normalisation follow
/// distribution/reference (what containerd's CRI plugin uses), so <c>busybox</c> names the same image in
/// Hull as in containerd: <c>docker.io/library/busybox:latest</c>.
/// </summary>
public sealed class ImageReference : IEquatable<ImageReference>
{
    public const string DockerHubDomain = "docker.io";
    public const string DefaultTag = "latest";
    private const string LegacyDockerHubDomain = "index.docker.io";
    private const string OfficialRepositoryPrefix = "library/";

    private ImageReference(string domain, string path, string? tag, string? digest)
    {
        Domain = domain;
        Path = path;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host namespace (<c>docker.io</c>, <c>localhost:5000</c>); empty only for unnormalised names without one.</summary>
    public string Domain { get; }

    /// <summary>The repository path inside the registry (<c>library/busybox</c>).</summary>
    public string Path { get; }

    public string? Tag { get; }

    public string? Digest { get; }

    /// <summary><c>domain/path</c>: the repository, without tag or digest.</summary>
    public string Name => Domain.Length == 0 ? Path : Domain + "/" + Path;

    /// <summary>What to ask the registry's <c>/manifests/</c> endpoint for: the digest when there is one, else the tag.</summary>
    public string? ManifestReference => Digest ?? Tag;

    public override string ToString() =>
        Name + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    public ImageReference WithTag(string tag)
    {
        if (!ReferenceGrammar.AnchoredTag().IsMatch(tag))
            throw Invalid(tag, "invalid tag format");
        return new ImageReference(Domain, Path, tag, null);
    }

    public ImageReference WithDigest(string digest)
    {
        Digests.Validate(digest);
        return new ImageReference(Domain, Path, null, digest);
    }

    /// <summary>The repository alone (no tag, no digest).</summary>
    public ImageReference WithoutObject() => new(Domain, Path, null, null);

    /// <summary>
    /// Parses and normalises like containerd's <c>reference.ParseDockerRef</c>: Docker Hub names get
    /// <c>docker.io</c> and <c>library/</c>, a name without tag or digest gets <c>:latest</c>, and a
    /// reference with both tag and digest keeps only the digest.
    /// </summary>
    /// <exception cref="HullException">InvalidArgument, naming the reference.</exception>
    public static ImageReference ParseDockerRef(string reference)
    {
        ImageReference named = ParseNormalized(reference);
        if (named.Digest is not null) return named.Tag is null ? named : new ImageReference(named.Domain, named.Path, null, named.Digest);
        return named.Tag is null ? new ImageReference(named.Domain, named.Path, DefaultTag, null) : named;
    }

    public static bool TryParseDockerRef(string reference, [NotNullWhen(true)] out ImageReference? result)
    {
        try
        {
            result = ParseDockerRef(reference);
            return true;
        }
        catch (HullException)
        {
            result = null;
            return false;
        }
    }

    /// <summary>
    /// Parses a "familiar" name as the docker CLI writes it (distribution's <c>ParseNormalizedNamed</c>):
    /// adds the Docker Hub domain and <c>library/</c> where they are implied, keeps tag and digest as given.
    /// </summary>
    public static ImageReference ParseNormalized(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Length == 0) throw Invalid(reference, "repository name must have at least one component");
        if (ReferenceGrammar.AnchoredIdentifier().IsMatch(reference))
            throw Invalid(reference, "cannot specify 64-byte hexadecimal strings as a repository name");

        (string domain, string remainder) = SplitDockerDomain(reference);
        int tagSeparator = remainder.IndexOf(':');
        string remoteName = tagSeparator >= 0 ? remainder[..tagSeparator] : remainder;
        if (!IsLower(remoteName))
            throw Invalid(reference, "repository name must be lowercase");

        ImageReference parsed = Parse(domain + "/" + remainder, reference);
        return parsed;
    }

    /// <summary>Parses a fully qualified reference exactly as written (distribution's <c>Parse</c>), without normalising.</summary>
    public static ImageReference Parse(string reference) => Parse(reference, reference);

    private static ImageReference Parse(string text, string original)
    {
        Match match = ReferenceGrammar.Reference().Match(text);
        if (!match.Success)
        {
            if (text.Length == 0) throw Invalid(original, "repository name must have at least one component");
            if (ReferenceGrammar.Reference().IsMatch(text.ToLowerInvariant())) throw Invalid(original, "repository name must be lowercase");
            throw Invalid(original, "invalid reference format");
        }

        string name = match.Groups["name"].Value;
        if (name.Length > ReferenceGrammar.NameTotalLengthMax)
            throw Invalid(original, $"repository name must not be more than {ReferenceGrammar.NameTotalLengthMax} characters");

        Match nameMatch = ReferenceGrammar.AnchoredName().Match(name);
        string domain = nameMatch.Groups["domain"].Value;
        string path = nameMatch.Groups["path"].Value;

        string? tag = match.Groups["tag"].Success ? match.Groups["tag"].Value : null;
        string? digest = match.Groups["digest"].Success ? match.Groups["digest"].Value : null;
        if (digest is not null && !Digests.IsValid(digest))
            throw Invalid(original, $"invalid digest \"{digest}\"");
        return new ImageReference(domain, path, tag, digest);
    }

    // distribution/reference splitDockerDomain: which first path element is a registry host.
    private static (string Domain, string Remainder) SplitDockerDomain(string name)
    {
        int slash = name.IndexOf('/');
        string domain, remainder;
        if (slash < 0)
        {
            // A single element ("ubuntu", "ubuntu:22.04") is always a Docker Hub official image,
            // never "host:port".
            return (DockerHubDomain, OfficialRepositoryPrefix + name);
        }

        string first = name[..slash];
        string rest = name[(slash + 1)..];
        if (first == "localhost" || first.AsSpan().IndexOfAny('.', ':') >= 0 || !IsLower(first))
        {
            // "localhost", anything with a dot or a port, and anything uppercase (a namespace cannot be) is a host.
            (domain, remainder) = (first == LegacyDockerHubDomain ? DockerHubDomain : first, rest);
        }
        else
        {
            (domain, remainder) = (DockerHubDomain, name);
        }

        if (domain == DockerHubDomain && !remainder.Contains('/'))
            remainder = OfficialRepositoryPrefix + remainder;
        return (domain, remainder);
    }

    private static bool IsLower(string s) => string.Equals(s, s.ToLowerInvariant(), StringComparison.Ordinal);

    private static HullException Invalid(string reference, string reason) =>
        new(ErrorKind.InvalidArgument, $"invalid image reference \"{reference}\": {reason}");

    public bool Equals(ImageReference? other) =>
        other is not null && Domain == other.Domain && Path == other.Path && Tag == other.Tag && Digest == other.Digest;

    public override bool Equals(object? obj) => Equals(obj as ImageReference);

    public override int GetHashCode() => HashCode.Combine(Domain, Path, Tag, Digest);
}
