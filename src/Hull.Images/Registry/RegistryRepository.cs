using System.Net;
using System.Net.Http.Headers;
using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Reference;

namespace Hull.Images.Registry;

/// <summary>
/// Registry operations on one repository with one set of credentials: resolve and fetch manifests,
/// stream blobs (resumable, with progress), and the push primitives. Cheap to create; the
/// <see cref="RegistryClient"/> holds the shared state.
/// </summary>
public sealed class RegistryRepository
{
    /// <summary>containerd's limit for a manifest or index held in memory.</summary>
    public const int MaxManifestSize = 4 * 1024 * 1024;

    private static readonly string[] ManifestAccept =
    [
        MediaTypes.OciIndex, MediaTypes.OciManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest, "*/*",
    ];

    private readonly RegistryClient _client;
    private readonly RegistryCredentials? _credentials;

    internal RegistryRepository(RegistryClient client, ImageReference image, RegistryCredentials? credentials)
    {
        _client = client;
        Image = image;
        _credentials = credentials;
    }

    public ImageReference Image { get; }

    private RegistryTransport Transport => _client.Transport;

    private string ImageName => Image.ToString();

    /// <summary>Fetches the manifest the reference names: by digest if it has one, else by tag.</summary>
    public Task<FetchedManifest> ResolveAsync(CancellationToken ct = default) =>
        FetchManifestAsync(Image.ManifestReference ?? ImageReference.DefaultTag, ct);

    /// <summary>
    /// Fetches a manifest or index by tag (from hosts that may resolve) or by digest (from hosts that may
    /// pull). By digest the content must hash to it; by tag the digest is computed and, when the registry
    /// sends Docker-Content-Digest, must agree with it.
    /// </summary>
    /// <exception cref="Schema1ImageException">The registry only has a Docker schema 1 manifest.</exception>
    /// <exception cref="HullException">NotFound when no host has it; other kinds as <see cref="RegistryException"/> explains.</exception>
    public Task<FetchedManifest> FetchManifestAsync(string tagOrDigest, CancellationToken ct = default)
    {
        bool byDigest = tagOrDigest.Contains(':');
        if (byDigest) Digests.Validate(tagOrDigest);
        string subject = byDigest && tagOrDigest != Image.Digest ? $"manifest \"{tagOrDigest}\" of image \"{ImageName}\"" : $"image \"{ImageName}\"";
        HostCapabilities needed = byDigest ? HostCapabilities.Pull : HostCapabilities.Pull | HostCapabilities.Resolve;
        return _client.TryHostsAsync(HostsWith(needed), host => FetchManifestFromAsync(host, tagOrDigest, byDigest, subject, ct), subject);
    }

    /// <summary>
    /// Opens a blob for reading from <paramref name="offset"/> (a Range request; when the server ignores
    /// Range the first <paramref name="offset"/> bytes are skipped). The stream ends at the descriptor's size,
    /// re-requests the rest if the connection breaks, and reports bytes read so far (offset included) to
    /// <paramref name="progress"/>, synchronously on the reading thread.
    /// </summary>
    public Task<Stream> FetchBlobAsync(Descriptor blob, long offset = 0, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        Digests.Validate(blob.Digest);
        if (offset < 0 || offset > blob.Size)
            throw new HullException(ErrorKind.InvalidArgument, $"offset {offset} is outside blob \"{blob.Digest}\" of {blob.Size} bytes");
        string subject = $"blob \"{blob.Digest}\" of image \"{ImageName}\"";

        return _client.TryHostsAsync<Stream>(HostsWith(HostCapabilities.Pull), async host =>
        {
            Stream body = offset == blob.Size ? Stream.Null : await OpenBlobAsync(host, blob, offset, subject, ct).ConfigureAwait(false);
            return new BlobReadStream(body, offset, blob.Size, blob.Digest, progress,
                (resumeAt, token) => OpenBlobAsync(host, blob, resumeAt, subject, token), _client.Options.MaxBlobResumes);
        }, subject);
    }

    /// <summary><c>HEAD</c> on the blob at the push host: whether an upload can be skipped.</summary>
    public async Task<bool> BlobExistsAsync(string digest, CancellationToken ct = default)
    {
        Digests.Validate(digest);
        RegistryHost host = PushHost();
        using HttpResponseMessage response = await Transport.SendAsync(
            new RegistryRequest(Auth(host, push: true), HttpMethod.Head, BlobPath(digest)), ct).ConfigureAwait(false);
        if (response.IsSuccessStatusCode) return true;
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        throw await RegistryResponses.ToExceptionAsync(response, host, $"blob \"{digest}\" of image \"{ImageName}\"", Auth(host, true).EffectiveCredentials is not null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Uploads a blob unless the registry has it (monolithic: <c>POST /blobs/uploads/</c> then <c>PUT ?digest=</c>).
    /// The stream is read from its current position and not disposed; a seekable stream is retried on
    /// transient failures. Returns false when the blob was already there.
    /// </summary>
    public async Task<bool> PushBlobAsync(Descriptor blob, Stream content, CancellationToken ct = default)
    {
        if (await BlobExistsAsync(blob.Digest, ct).ConfigureAwait(false)) return false;

        RegistryHost host = PushHost();
        AuthScope auth = Auth(host, push: true);
        string subject = $"blob \"{blob.Digest}\" of image \"{ImageName}\"";

        string location;
        using (HttpResponseMessage start = await Transport.SendAsync(
            new RegistryRequest(auth, HttpMethod.Post, $"/{Image.Path}/blobs/uploads/"), ct).ConfigureAwait(false))
        {
            if (start.StatusCode != HttpStatusCode.Accepted)
                throw await RegistryResponses.ToExceptionAsync(start, host, subject, auth.EffectiveCredentials is not null, ct).ConfigureAwait(false);
            location = UploadUrl(host, start.Headers.Location
                ?? throw new RegistryException(ErrorKind.Unavailable, $"registry \"{host.Host}\" started an upload for {subject} without a Location", host.Host));
        }

        long start0 = content.CanSeek ? content.Position : 0;
        string put = location + (location.Contains('?') ? "&" : "?") + "digest=" + Uri.EscapeDataString(blob.Digest);
        var request = new RegistryRequest(auth, HttpMethod.Put, put)
        {
            Content = () =>
            {
                if (content.CanSeek) content.Position = start0;
                var body = new StreamContent(new BorrowedStream(content));
                body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                body.Headers.ContentLength = blob.Size;
                return body;
            },
            Retryable = content.CanSeek,
        };
        using HttpResponseMessage done = await Transport.SendAsync(request, ct).ConfigureAwait(false);
        if (done.StatusCode != HttpStatusCode.Created)
            throw await RegistryResponses.ToExceptionAsync(done, host, subject, auth.EffectiveCredentials is not null, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary><c>PUT</c> a manifest or index under a tag or its digest; returns its digest.</summary>
    public async Task<string> PushManifestAsync(string tagOrDigest, ReadOnlyMemory<byte> content, string mediaType, CancellationToken ct = default)
    {
        string digest = Digests.Sha256(content.Span);
        if (tagOrDigest.Contains(':') && tagOrDigest != digest)
            throw new HullException(ErrorKind.InvalidArgument, $"manifest for image \"{ImageName}\" has digest \"{digest}\", not \"{tagOrDigest}\"");

        RegistryHost host = PushHost();
        AuthScope auth = Auth(host, push: true);
        var request = new RegistryRequest(auth, HttpMethod.Put, $"/{Image.Path}/manifests/{tagOrDigest}")
        {
            Content = () =>
            {
                var body = new ReadOnlyMemoryContent(content);
                body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return body;
            },
        };
        using HttpResponseMessage response = await Transport.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
            throw await RegistryResponses.ToExceptionAsync(response, host, $"manifest \"{tagOrDigest}\" of image \"{ImageName}\"", auth.EffectiveCredentials is not null, ct).ConfigureAwait(false);

        string? reported = DockerContentDigest(response);
        if (reported is not null && Digests.IsValid(reported) && Digests.Algorithm(reported) == "sha256" && reported != digest)
            throw new HullException(ErrorKind.FailedPrecondition, $"registry \"{host.Host}\" stored the manifest of image \"{ImageName}\" as \"{reported}\", expected \"{digest}\"");
        return digest;
    }

    private async Task<FetchedManifest> FetchManifestFromAsync(RegistryHost host, string reference, bool byDigest, string subject, CancellationToken ct)
    {
        AuthScope auth = Auth(host, push: false);
        var request = new RegistryRequest(auth, HttpMethod.Get, WithNamespace(host, $"/{Image.Path}/manifests/{reference}"))
        {
            Configure = r =>
            {
                foreach (string type in ManifestAccept) r.Headers.Accept.ParseAdd(type);
            },
        };
        using HttpResponseMessage response = await Transport.SendAsync(request, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw await RegistryResponses.ToExceptionAsync(response, host, subject, auth.EffectiveCredentials is not null, ct).ConfigureAwait(false);

        byte[] content = await ReadLimitedAsync(response, MaxManifestSize, host, subject, ct).ConfigureAwait(false);
        string mediaType = ManifestDocument.DetectMediaType(content, response.Content.Headers.ContentType?.ToString(), ImageName);

        string digest;
        if (byDigest)
        {
            digest = Digests.Format(Digests.Algorithm(reference), Hash(reference, content));
            if (digest != reference)
                throw new HullException(ErrorKind.FailedPrecondition, $"registry \"{host.Host}\" sent content with digest \"{digest}\" for {subject}, which was asked for by digest \"{reference}\"");
        }
        else
        {
            digest = Digests.Sha256(content);
            string? reported = DockerContentDigest(response);
            if (reported is not null && Digests.IsValid(reported))
            {
                string computed = Digests.Format(Digests.Algorithm(reported), Hash(reported, content));
                if (computed != reported)
                    throw new HullException(ErrorKind.FailedPrecondition, $"registry \"{host.Host}\" sent a manifest for {subject} whose digest \"{computed}\" does not match its Docker-Content-Digest \"{reported}\"");
                digest = reported;
            }
        }
        return new FetchedManifest(digest, mediaType, content, host);
    }

    private async Task<Stream> OpenBlobAsync(RegistryHost host, Descriptor blob, long offset, string subject, CancellationToken ct)
    {
        AuthScope auth = Auth(host, push: false);
        var request = new RegistryRequest(auth, HttpMethod.Get, WithNamespace(host, BlobPath(blob.Digest)))
        {
            Configure = r =>
            {
                if (offset > 0) r.Headers.Range = new RangeHeaderValue(offset, null);
            },
        };
        HttpResponseMessage response = await Transport.SendAsync(request, ct).ConfigureAwait(false);
        try
        {
            if (!response.IsSuccessStatusCode)
                throw await RegistryResponses.ToExceptionAsync(response, host, subject, auth.EffectiveCredentials is not null, ct).ConfigureAwait(false);

            Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            if (offset == 0) return body;

            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                long? from = response.Content.Headers.ContentRange?.From;
                if (from != offset)
                    throw new RegistryException(ErrorKind.Unavailable, $"registry \"{host.Host}\" answered a range request for {subject} at {offset} with range starting at {from}", host.Host, response.StatusCode);
                return body;
            }

            // 200: the server ignored Range and sends the whole blob; skip what the caller already has.
            await SkipAsync(body, offset, ct).ConfigureAwait(false);
            return body;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private static async Task SkipAsync(Stream body, long count, CancellationToken ct)
    {
        byte[] buffer = new byte[81920];
        while (count > 0)
        {
            int n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("blob ended before the resume offset");
            count -= n;
        }
    }

    private static async Task<byte[]> ReadLimitedAsync(HttpResponseMessage response, int limit, RegistryHost host, string subject, CancellationToken ct) =>
        await RegistryResponses.ReadBoundedAsync(response, limit, ct).ConfigureAwait(false)
            ?? throw new HullException(ErrorKind.FailedPrecondition, $"registry \"{host.Host}\" sent a manifest for {subject} larger than {limit} bytes");

    private static byte[] Hash(string digest, byte[] content)
    {
        using var hash = Digests.CreateHash(digest);
        hash.AppendData(content);
        return hash.GetHashAndReset();
    }

    private static string? DockerContentDigest(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Docker-Content-Digest", out IEnumerable<string>? values) ? values.FirstOrDefault()?.Trim() : null;

    private IReadOnlyList<RegistryHost> HostsWith(HostCapabilities capabilities) =>
        _client.Hosts.Resolve(Image.Domain).Where(h => h.Has(capabilities)).ToArray();

    // containerd pushes to the first host that may push (normally the server, not a mirror).
    private RegistryHost PushHost() =>
        HostsWith(HostCapabilities.Push).FirstOrDefault()
        ?? throw new HullException(ErrorKind.FailedPrecondition, $"no registry host for \"{Image.Domain}\" is configured with the push capability");

    private AuthScope Auth(RegistryHost host, bool push) =>
        new(host, Image.Domain, _credentials, [AuthScope.RepositoryScope(Image.Path, push)]);

    private string BlobPath(string digest) => $"/{Image.Path}/blobs/{digest}";

    private string WithNamespace(RegistryHost host, string path) =>
        RegistryClient.IsMirror(host, Image.Domain) ? path + (path.Contains('?') ? "&" : "?") + "ns=" + Uri.EscapeDataString(Image.Domain) : path;

    // Location may be relative to the registry host (docker-registry sends absolute, others do not).
    private string UploadUrl(RegistryHost host, Uri location)
    {
        if (location.IsAbsoluteUri) return location.ToString();
        string baseUrl = Transport.BaseUrl(host);
        string origin = baseUrl[..(baseUrl.IndexOf("://", StringComparison.Ordinal) + 3 + host.Host.Length)];
        string relative = location.OriginalString;
        return relative.StartsWith('/') ? origin + relative : baseUrl + "/" + relative;
    }

    /// <summary>Lends a caller's stream to StreamContent without letting the request dispose it.</summary>
    private sealed class BorrowedStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
