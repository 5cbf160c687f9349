using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Hull.Images.Tests.Registry;

/// <summary>What to put in a test registry's config beyond storage and address.</summary>
public sealed record RegistryProcessOptions
{
    /// <summary>The <c>auth:</c> section, indented by two spaces per level under <c>auth:</c>.</summary>
    public string? AuthYaml { get; init; }

    /// <summary>Serve HTTPS with this certificate and key (PEM files).</summary>
    public (string Certificate, string Key)? Tls { get; init; }

    /// <summary>With <see cref="Tls"/>: require client certificates issued by this CA (PEM file).</summary>
    public string? ClientCa { get; init; }
}

/// <summary>
/// A real <c>docker-registry</c> (Debian package docker-registry, distribution 2.8) on 127.0.0.1 with a free
/// port, a generated config and temporary storage; killed and cleaned up on dispose. Test-only.
/// </summary>
public sealed class RegistryProcess : IAsyncDisposable
{
    public const string Binary = "/usr/bin/docker-registry";

    /// <summary>bcrypt (cost 4) of <see cref="Password"/> for user <see cref="User"/>: the registry's htpasswd only takes bcrypt.</summary>
    public const string User = "hull";
    public const string Password = "s3cret-pass";
    public const string HtpasswdLine = "hull:$2b$04$X6xg3Kek9slTtUW3eazzOut9hcy1mLtxGW4qa.jF/0MzPA91CULmO";

    private readonly Process _process;
    private readonly StringBuilder _log;
    private readonly TestDirectory _dir;

    private RegistryProcess(Process process, StringBuilder log, TestDirectory dir, int port)
    {
        _process = process;
        _log = log;
        _dir = dir;
        Port = port;
    }

    public static bool IsAvailable => File.Exists(Binary);

    public int Port { get; }

    /// <summary><c>127.0.0.1:port</c>: the registry host as it appears in image references.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public string Directory => _dir.Path;

    /// <summary>What the registry logged so far (for failure messages).</summary>
    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public static async Task<RegistryProcess> StartAsync(RegistryProcessOptions? options = null)
    {
        options ??= new RegistryProcessOptions();
        var dir = new TestDirectory();
        int port = FreePort();
        var config = new StringBuilder();
        config.Append($"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {dir.Sub("storage")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
              secret: hull-test-secret

            """);
        if (options.Tls is { } tls)
        {
            config.Append($"  tls:\n    certificate: {tls.Certificate}\n    key: {tls.Key}\n");
            if (options.ClientCa is not null) config.Append($"    clientcas:\n      - {options.ClientCa}\n");
        }
        if (options.AuthYaml is not null)
            config.Append("auth:\n").Append(options.AuthYaml).Append('\n');
        string configPath = dir.Write("config.yml", config.ToString());

        var log = new StringBuilder();
        var psi = new ProcessStartInfo(Binary, ["serve", configPath])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var registry = new RegistryProcess(process, log, dir, port);
        try
        {
            await registry.WaitUntilListeningAsync();
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
        return registry;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        _dir.Dispose();
    }

    private async Task WaitUntilListeningAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}:\n{Log}");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        throw new TimeoutException($"docker-registry did not listen on {Host}:\n{Log}");
    }

    private static void Append(StringBuilder log, string? line)
    {
        if (line is null) return;
        lock (log) log.AppendLine(line);
    }

    /// <summary>A port nobody listens on right now (the usual bind-to-0 trick; the race is harmless in tests).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A fact that needs the docker-registry binary; skipped with the reason when it is missing.</summary>
public sealed class RegistryFactAttribute : FactAttribute
{
    public RegistryFactAttribute()
    {
        if (!RegistryProcess.IsAvailable)
            Skip = $"needs {RegistryProcess.Binary} (Debian package docker-registry)";
    }
}
