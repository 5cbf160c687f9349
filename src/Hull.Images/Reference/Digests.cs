using System.Security.Cryptography;
using Hull.Core;

namespace Hull.Images.Reference;

/// <summary>
/// Content digests (<c>algorithm:hex</c>) as go-digest validates them: sha256, sha384 and sha512
/// with lowercase hex of the algorithm's exact length.
/// </summary>
public static class Digests
{
    public const string Sha256Prefix = "sha256:";

    /// <summary>True when <paramref name="digest"/> is a well-formed digest of a supported algorithm.</summary>
    public static bool IsValid(string? digest) => Check(digest) is null;

    /// <summary>Throws InvalidArgument when <paramref name="digest"/> is not a valid digest.</summary>
    public static void Validate(string? digest)
    {
        string? problem = Check(digest);
        if (problem is not null)
            throw new HullException(ErrorKind.InvalidArgument, $"invalid digest \"{digest}\": {problem}");
    }

    /// <summary>The sha256 digest of <paramref name="data"/>.</summary>
    public static string Sha256(ReadOnlySpan<byte> data) =>
        Sha256Prefix + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>The algorithm part (<c>sha256</c>) of a valid digest.</summary>
    public static string Algorithm(string digest) => digest[..digest.IndexOf(':')];

    /// <summary>An incremental hash for the algorithm of <paramref name="digest"/>, to verify content while it streams.</summary>
    public static IncrementalHash CreateHash(string digest)
    {
        Validate(digest);
        return IncrementalHash.CreateHash(HashName(Algorithm(digest))!.Value);
    }

    /// <summary>Formats a finished hash in the algorithm of <paramref name="digest"/>.</summary>
    public static string Format(string algorithm, ReadOnlySpan<byte> hash) => algorithm + ":" + Convert.ToHexStringLower(hash);

    private static string? Check(string? digest)
    {
        if (string.IsNullOrEmpty(digest)) return "empty";
        int colon = digest.IndexOf(':');
        if (colon <= 0 || colon == digest.Length - 1) return "expected algorithm:hex";
        string algorithm = digest[..colon];
        int? length = algorithm switch { "sha256" => 64, "sha384" => 96, "sha512" => 128, _ => null };
        if (length is null) return $"unsupported digest algorithm \"{algorithm}\"";
        ReadOnlySpan<char> hex = digest.AsSpan(colon + 1);
        if (hex.Length != length) return $"{algorithm} needs {length} hex characters, got {hex.Length}";
        foreach (char c in hex)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f'))) return "hex must be lowercase 0-9a-f";
        }
        return null;
    }

    private static HashAlgorithmName? HashName(string algorithm) => algorithm switch
    {
        "sha256" => HashAlgorithmName.SHA256,
        "sha384" => HashAlgorithmName.SHA384,
        "sha512" => HashAlgorithmName.SHA512,
        _ => null,
    };
}
