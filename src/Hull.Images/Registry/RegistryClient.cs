using Hull.Core;
using Hull.Images.Reference;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Registry;

/// <summary>
/// The registry client of the transfer service (OCI distribution spec / Docker Registry HTTP API v2).
/// Long-lived: it owns the connection pools and the token cache. Per image, take a
/// <see cref="RegistryRepository"/> with <see cref="Repository"/>.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private readonly RegistryTransport _transport;

    public RegistryClient(RegistryHosts hosts, RegistryClientOptions? options = null)
    {
        Hosts = hosts;
        Options = options ?? new RegistryClientOptions();
        _transport = new RegistryTransport(Options);
    }

    public RegistryHosts Hosts { get; }

    public RegistryClientOptions Options { get; }

    internal RegistryTransport Transport => _transport;

    /// <summary>Operations on one repository, with the credentials of this pull or push.</summary>
    public RegistryRepository Repository(ImageReference image, RegistryCredentials? credentials = null)
    {
        if (image.Domain.Length == 0) throw new HullException(ErrorKind.InvalidArgument, $"image reference \"{image}\" has no registry host");
        return new RegistryRepository(this, image, credentials);
    }

    /// <summary>
    /// <c>GET /v2/</c> on the hosts of <paramref name="registryHost"/> in order, authenticating if challenged;
    /// returns the first host that answers 200. Checks reachability and credentials without naming an image.
    /// </summary>
    public async Task<RegistryHost> PingAsync(string registryHost, RegistryCredentials? credentials = null, CancellationToken ct = default)
    {
        IReadOnlyList<RegistryHost> hosts = Hosts.Resolve(registryHost);
        return await TryHostsAsync(hosts, async host =>
        {
            var auth = new AuthScope(host, registryHost, credentials, []);
            using HttpResponseMessage response = await _transport.SendAsync(new RegistryRequest(auth, HttpMethod.Get, "/"), ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw await RegistryResponses.ToExceptionAsync(response, host, $"registry \"{registryHost}\"", auth.EffectiveCredentials is not null, ct).ConfigureAwait(false);
            return host;
        }, $"registry \"{registryHost}\"").ConfigureAwait(false);
    }

    public void Dispose() => _transport.Dispose();

    /// <summary>
    /// Tries each host in order, as containerd does with mirrors: a 404 or a failing host moves on to the
    /// next. The first real failure wins over "not found", so a broken mirror in front of a server that
    /// lacks the image reports the mirror's problem only when nothing better is known.
    /// </summary>
    internal async Task<T> TryHostsAsync<T>(IReadOnlyList<RegistryHost> hosts, Func<RegistryHost, Task<T>> attempt, string subject)
    {
        if (hosts.Count == 0)
            throw new HullException(ErrorKind.FailedPrecondition, $"no registry host is configured for {subject} with the needed capabilities");

        HullException? failure = null, notFound = null;
        foreach (RegistryHost host in hosts)
        {
            try
            {
                return await attempt(host).ConfigureAwait(false);
            }
            catch (Schema1ImageException)
            {
                throw; // an answer, not a host failure
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound)
            {
                Options.Logger.LogDebug("{Subject}: not found on {Host}", subject, host);
                notFound = e;
            }
            catch (HullException e)
            {
                Options.Logger.LogInformation("{Subject}: host {Host} failed: {Message}", subject, host, e.Message);
                failure ??= e;
            }
        }
        throw failure ?? notFound!;
    }

    /// <summary>containerd's isProxy: requests to a host that is not the namespace itself carry <c>?ns=</c>.</summary>
    internal static bool IsMirror(RegistryHost host, string registryDomain) =>
        host.Host != registryDomain && !(registryDomain == ImageReference.DockerHubDomain && host.Host == "registry-1.docker.io");
}
