using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Hull.E2E.Fixtures;

public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary>USER:PASS, as skopeo's --creds and curl's -u take it.</summary>
    public override string ToString() => $"{Username}:{Password}";

    public AuthenticationHeaderValue BasicHeader() =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(ToString())));
}

public sealed record RegistryOptions
{
    /// <summary>htpasswd (bcrypt) Basic auth with this one user; anonymous requests get 401.</summary>
    public RegistryCredentials? BasicAuth { get; init; }

    /// <summary>
    /// Bearer token auth: a <see cref="RegistryTokenServer"/> is started beside the registry and
    /// issues tokens to this user (and, with <see cref="AnonymousPull"/>, pull-only tokens to anyone).
    /// </summary>
    public RegistryCredentials? TokenAuth { get; init; }

    /// <summary>With <see cref="TokenAuth"/>: anonymous clients get pull-only tokens.</summary>
    public bool AnonymousPull { get; init; }

    /// <summary>
    /// Accept Docker schema 1 manifests (distribution 2.8 refuses them by default with
    /// "manifest schema v1 unsupported"); on, so <see cref="TestImages.DockerSchema1"/> can be pushed.
    /// </summary>
    public bool Schema1 { get; init; } = true;
}

/// <summary>
/// A real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1 with a free port, a
/// temporary storage directory and a generated config. Plain HTTP. Disposing it kills the registry
/// (and its token server) and removes the directory.
/// </summary>
public sealed class RegistryProcess : IAsyncDisposable, IDisposable
{
    public const string Binary = "docker-registry";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private int _disposed;

    private RegistryProcess(string dir, int port, Process process, RegistryOptions options, RegistryTokenServer? tokenServer)
    {
        Dir = dir;
        Port = port;
        _process = process;
        Options = options;
        TokenServer = tokenServer;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Dir { get; }
    public int Port { get; }
    public RegistryOptions Options { get; }
    public RegistryTokenServer? TokenServer { get; }

    /// <summary>"127.0.0.1:PORT", the registry host as an image reference names it.</summary>
    public string Host => $"127.0.0.1:{Port}";
    public Uri BaseUri => new($"http://{Host}/");
    public string StorageDir => Path.Combine(Dir, "storage");
    public string ConfigPath => Path.Combine(Dir, "config.yml");
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>The user that may push and pull, when the registry has auth.</summary>
    public RegistryCredentials? Credentials => Options.BasicAuth ?? Options.TokenAuth;

    /// <summary>The registry's log (application and access log).</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public string Reference(string repository, string tag = "latest") => $"{Host}/{repository}:{tag}";

    /// <summary>Where the filesystem driver keeps a blob: tests corrupt or delete it to make pulls fail.</summary>
    public string BlobDataPath(string digest)
    {
        var hex = digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest["sha256:".Length..] : digest;
        return Path.Combine(StorageDir, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    public static async Task<RegistryProcess> StartAsync(RegistryOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RegistryOptions();
        if (options.BasicAuth is not null && options.TokenAuth is not null)
            throw new ArgumentException("a registry has either Basic or token auth, not both", nameof(options));
        var binary = Prerequisites.Resolve(Binary) ?? throw new InvalidOperationException($"{Binary} is not installed; run hack/install-deps.sh");
        var dir = Directory.CreateTempSubdirectory("hull-e2e-registry-").FullName;
        RegistryTokenServer? tokenServer = null;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "storage"));
            if (options.BasicAuth is { } basic)
                await File.WriteAllTextAsync(Path.Combine(dir, "htpasswd"), $"{basic.Username}:{Bcrypt.Hash(basic.Password)}\n", cancellationToken);
            if (options.TokenAuth is { } token)
            {
                tokenServer = RegistryTokenServer.Start(token, options.AnonymousPull);
                await File.WriteAllTextAsync(Path.Combine(dir, "token-ca.pem"), tokenServer.CertificatePem, cancellationToken);
            }

            // The port is free when picked, but another process may take it before the registry
            // binds: then the registry exits with "address already in use" and we pick again.
            for (int attempt = 1; ; attempt++)
            {
                int port = FreePort();
                await File.WriteAllTextAsync(Path.Combine(dir, "config.yml"), Config(dir, port, options, tokenServer), cancellationToken);
                var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                info.ArgumentList.Add("serve");
                info.ArgumentList.Add(Path.Combine(dir, "config.yml"));
                var registry = new RegistryProcess(dir, port, Process.Start(info) ?? throw new InvalidOperationException($"cannot start {binary}"), options, tokenServer);
                try
                {
                    await registry.WaitUntilServingAsync(cancellationToken);
                    return registry;
                }
                catch (Exception) when (attempt < 5 && registry.HasExited && registry.Log.Contains("address already in use", StringComparison.Ordinal))
                {
                    registry._process.Dispose();
                }
                catch
                {
                    registry.Kill();
                    throw;
                }
            }
        }
        catch
        {
            tokenServer?.Dispose();
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    /// <summary>An HTTP client for the registry's API (with the Basic credentials, when it has them).</summary>
    public HttpClient CreateClient()
    {
        var client = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        if (Options.BasicAuth is { } basic) client.DefaultRequestHeaders.Authorization = basic.BasicHeader();
        return client;
    }

    private async Task WaitUntilServingAsync(CancellationToken cancellationToken)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"{Binary} exited with {_process.ExitCode} before serving:\n{Log}");
            try
            {
                // 401 counts: with auth configured, the API answers anonymous requests with a challenge.
                using var response = await client.GetAsync(new Uri(BaseUri, "v2/"), cancellationToken);
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested) { }
            await Task.Delay(50, cancellationToken);
        }
        throw new TimeoutException($"{Binary} did not answer on {BaseUri}v2/ within {StartTimeout}:\n{Log}");
    }

    private static string Config(string dir, int port, RegistryOptions options, RegistryTokenServer? tokenServer)
    {
        var yml = new StringBuilder($"""
            version: 0.1
            log:
              level: info
              formatter: text
            storage:
              filesystem:
                rootdirectory: {Path.Combine(dir, "storage")}
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:{port}
              secret: {Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}

            """);
        if (options.BasicAuth is not null)
            yml.Append($"""
                auth:
                  htpasswd:
                    realm: hull-test
                    path: {Path.Combine(dir, "htpasswd")}

                """);
        if (tokenServer is not null)
            yml.Append($"""
                auth:
                  token:
                    realm: {tokenServer.Realm}
                    service: {tokenServer.Service}
                    issuer: {tokenServer.Issuer}
                    rootcertbundle: {Path.Combine(dir, "token-ca.pem")}

                """);
        if (options.Schema1)
            yml.Append("""
                compatibility:
                  schema1:
                    enabled: true

                """);
        return yml.ToString();
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Kill();
        TokenServer?.Dispose();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (DirectoryNotFoundException) { }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// bcrypt password hashes for htpasswd files, from the system's libcrypt (libxcrypt, always on
/// Debian) so no apache2-utils is needed; `htpasswd -nbB` when libcrypt cannot be loaded.
/// </summary>
internal static class Bcrypt
{
    private static readonly Lock Gate = new();

    public static string Hash(string password)
    {
        try
        {
            // crypt(3) and crypt_gensalt(3) return static buffers: one caller at a time.
            lock (Gate)
            {
                // Cost 5 keeps every authenticated request fast; NULL random bytes = from the OS.
                var setting = Marshal.PtrToStringAnsi(crypt_gensalt("$2b$", 5, IntPtr.Zero, 0))
                    ?? throw new InvalidOperationException("crypt_gensalt failed");
                var hash = Marshal.PtrToStringAnsi(crypt(password, setting));
                if (hash is null || !hash.StartsWith("$2b$", StringComparison.Ordinal))
                    throw new InvalidOperationException($"crypt did not return a bcrypt hash: {hash}");
                return hash;
            }
        }
        catch (DllNotFoundException)
        {
            return HtpasswdHash(password);
        }
        catch (EntryPointNotFoundException)
        {
            return HtpasswdHash(password);
        }
    }

    private static string HtpasswdHash(string password)
    {
        var htpasswd = Prerequisites.Resolve("htpasswd") ?? throw new InvalidOperationException("no libcrypt and no htpasswd (apache2-utils) to make a bcrypt hash");
        var result = ProcessRunner.RunAsync(htpasswd, ["-nbB", "-C", "5", "user", password]).GetAwaiter().GetResult();
        if (result.ExitCode != 0) throw new InvalidOperationException($"htpasswd failed: {result}");
        return result.Stdout.Trim()["user:".Length..];
    }

    [DllImport("libcrypt.so.1", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern IntPtr crypt(string phrase, string setting);

    [DllImport("libcrypt.so.1", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern IntPtr crypt_gensalt(string prefix, ulong count, IntPtr rbytes, int nrbytes);
}
