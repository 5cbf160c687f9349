using System.Diagnostics;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Hull.Api.Cri;
using Hull.Grpc;
using Hull.Grpc.Client;

namespace Hull.E2E.Fixtures;

/// <summary>
/// A real hulld process with a temporary root, state dir, socket and generated config. Disposing it
/// stops the daemon with SIGTERM and proves nothing of it is left: no process, no mount, no socket.
/// </summary>
public sealed class HulldProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private HulldProcess(string dir, Process process)
    {
        Dir = dir;
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Channel = CriClient.Connect(Socket);
        Cri = new CriClient(Channel);
    }

    public string Dir { get; }
    public string Root => Path.Combine(Dir, "root");
    public string State => Path.Combine(Dir, "state");
    public string Socket => Path.Combine(Dir, "hull.sock");
    public string ConfigPath => Path.Combine(Dir, "config.toml");
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public GrpcChannel Channel { get; }
    public CriClient Cri { get; }

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    /// <summary>The end of <see cref="Log"/>, for a failure message.</summary>
    public string LogTail(int chars = 20000)
    {
        var log = Log;
        return log.Length <= chars ? log : log[^chars..];
    }

    /// <summary>Starts hulld in a fresh temporary directory and waits until it answers CRI Version.</summary>
    public static Task<HulldProcess> StartAsync(string? configToml = null, params string[] extraArgs) =>
        StartInAsync(Directory.CreateTempSubdirectory("hull-e2e-").FullName, configToml, extraArgs);

    /// <summary>Starts hulld over an existing directory (a restart keeps root and state).</summary>
    public static Task<HulldProcess> StartInAsync(string dir, string? configToml, params string[] extraArgs) =>
        StartInAsync(dir, configToml, null, extraArgs);

    /// <summary>Like <see cref="StartInAsync(string, string?, string[])"/>, with <paramref name="environment"/> added to hulld's environment.</summary>
    public static async Task<HulldProcess> StartInAsync(string dir, string? configToml, IReadOnlyDictionary<string, string>? environment, params string[] extraArgs)
    {
        var args = new List<string> { Repo.HulldDll, "--address", Path.Combine(dir, "hull.sock"),
            "--root", Path.Combine(dir, "root"), "--state", Path.Combine(dir, "state"), "--log-level", "debug" };
        if (configToml is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "config.toml"), configToml);
            args.AddRange(["--config", Path.Combine(dir, "config.toml")]);
        }
        args.AddRange(extraArgs);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        var hulld = new HulldProcess(dir, Process.Start(info)!);
        await hulld.WaitUntilServingAsync();
        return hulld;
    }

    private async Task WaitUntilServingAsync()
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"hulld exited with {_process.ExitCode} before serving:\n{Log}");
            if (File.Exists(Socket))
            {
                try
                {
                    await Cri.VersionAsync();
                    return;
                }
                catch (RpcException) { }
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"hulld did not answer on {Socket} within {StartTimeout}:\n{Log}");
    }

    /// <summary>Sends SIGTERM and waits for a clean exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Signal(_process.Id, 15);
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                throw new TimeoutException($"hulld did not stop within {timeout ?? TimeSpan.FromSeconds(20)} of SIGTERM:\n{Log}");
            }
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the crash case every restart test starts from.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await StopAsync();
        AssertNothingLeft();
        Directory.Delete(Dir, recursive: true);
    }

    /// <summary>After a stop: no process, mount or socket of this daemon remains.</summary>
    public void AssertNothingLeft()
    {
        Assert.True(_process.HasExited, "hulld is still running");
        Assert.False(File.Exists(Socket), $"socket {Socket} was left behind");
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(Dir, StringComparison.Ordinal)).ToArray();
        Assert.True(mounts.Length == 0, $"mounts left under {Dir}:\n{string.Join('\n', mounts)}");
        var processes = ProcessesMentioning(Dir);
        Assert.True(processes.Count == 0, $"processes left that mention {Dir}: {string.Join(", ", processes)}");
    }

    /// <summary>"pid: command line" of every process whose command line contains <paramref name="text"/>.</summary>
    internal static List<string> ProcessesMentioning(string text)
    {
        var found = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(text, StringComparison.Ordinal)) found.Add($"{pid}: {cmdline.Trim()}");
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    public static void Signal(int pid, int signal) => kill(pid, signal);
}

/// <summary>
/// CRI for tests through the generated client stubs, on Grpc.Net.Client over the unix socket; unary calls without a
/// deadline of their own get <see cref="DefaultTimeout"/>, so a hung daemon fails a test instead of holding it.
/// </summary>
public sealed class CriClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public CriClient(ChannelBase channel)
    {
        var invoker = channel.Intercept(new DefaultDeadline(DefaultTimeout));
        Runtime = new RuntimeService.RuntimeServiceClient(invoker);
        Image = new ImageService.ImageServiceClient(invoker);
    }

    public RuntimeService.RuntimeServiceClient Runtime { get; }
    public ImageService.ImageServiceClient Image { get; }

    public static GrpcChannel Connect(string socket) => GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
    {
        HttpHandler = UnixSocketHttpHandler.Create(socket),
        MaxReceiveMessageSize = GrpcProtocol.DefaultMaxMessageSize,
    });

    /// <summary>The deadline of a call that may take <paramref name="timeout"/>.</summary>
    public static DateTime In(TimeSpan timeout) => DateTime.UtcNow + timeout;

    public Task<VersionResponse> VersionAsync() => Runtime.VersionAsync(new VersionRequest { Version = "v1" }).ResponseAsync;
    public Task<StatusResponse> StatusAsync(bool verbose = false) => Runtime.StatusAsync(new StatusRequest { Verbose = verbose }).ResponseAsync;

    private sealed class DefaultDeadline(TimeSpan timeout) : Interceptor
    {
        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
            AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, context.Options.Deadline is null
                ? new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithDeadline(In(timeout)))
                : context);
    }
}
