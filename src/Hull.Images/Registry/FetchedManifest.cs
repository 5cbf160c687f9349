using Hull.Images.Oci;

namespace Hull.Images.Registry;

/// <summary>A manifest or index as the registry served it, with its verified digest.</summary>
/// <param name="Digest">The digest of <paramref name="Content"/> (checked against the requested digest or Docker-Content-Digest).</param>
/// <param name="MediaType">The manifest's media type (from the body, else the Content-Type).</param>
/// <param name="Content">The exact bytes; the digest is over these.</param>
/// <param name="Host">The registry host or mirror that served it.</param>
public sealed record FetchedManifest(string Digest, string MediaType, byte[] Content, RegistryHost Host)
{
    public Descriptor Descriptor => new(MediaType, Digest, Content.LongLength);

    public bool IsIndex => ManifestDocument.IsIndexType(MediaType);

    /// <summary>Parses the content; <paramref name="image"/> names the image in error messages.</summary>
    public ManifestDocument Parse(string image) => ManifestDocument.Parse(Content, MediaType, image);
}
