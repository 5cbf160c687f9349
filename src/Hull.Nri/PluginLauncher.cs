using System.Net.Sockets;
using Hull.Core;
using Hull.Linux;
using Hull.Linux.Processes;
using Microsoft.Extensions.Logging;

namespace Hull.Nri;

/// <summary>A pre-installed plugin found in plugin_path.</summary>
internal sealed record PluginExecutable(string Path, string Index, string Name, string Config);

/// <summary>
/// Finds and starts pre-installed plugins (containerd/nri's discoverPlugins and newLaunchedPlugin): executables named
/// <c>NN-name</c> in plugin_path, started with one end of a socket pair as fd 3 and NRI_PLUGIN_SOCKET=3,
/// NRI_PLUGIN_NAME and NRI_PLUGIN_IDX as their whole environment. Their stderr goes to Hull's log.
/// </summary>
internal static class PluginLauncher
{
    public static IReadOnlyList<PluginExecutable> Discover(NriOptions options)
    {
        if (!Directory.Exists(options.PluginPath)) return [];
        var found = new List<PluginExecutable>();
        foreach (var path in Directory.EnumerateFiles(options.PluginPath).Order(StringComparer.Ordinal))
        {
            if ((File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0) continue;
            var (index, name) = PluginNames.Parse(Path.GetFileName(path));
            found.Add(new PluginExecutable(path, index, name, ReadConfig(options.PluginConfigPath, index, name)));
        }
        return found;
    }

    /// <summary>NN-name.conf, else name.conf, else no configuration.</summary>
    public static string ReadConfig(string directory, string index, string name)
    {
        foreach (var file in new[] { $"{index}-{name}.conf", $"{name}.conf" })
        {
            var path = Path.Combine(directory, file);
            if (File.Exists(path)) return File.ReadAllText(path);
        }
        return "";
    }

    /// <summary>Starts the plugin; returns our end of its socket, its pid, and a way to kill it.</summary>
    public static (Stream Trunk, int Pid, Action Kill) Launch(PluginExecutable plugin, ILogger logger)
    {
        var (local, peer) = Descriptors.CreateSocketPair();
        var (logLocal, logPeer) = Descriptors.CreateSocketPair();
        int pid;
        try
        {
            pid = ProcessSpawner.Spawn(new SpawnRequest(plugin.Path, [])
            {
                Environment = new Dictionary<string, string>
                {
                    ["NRI_PLUGIN_NAME"] = plugin.Name,
                    ["NRI_PLUGIN_IDX"] = plugin.Index,
                    ["NRI_PLUGIN_SOCKET"] = "3",
                },
                Descriptors = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [2] = logPeer, [3] = peer },
            });
        }
        catch (Exception e) when (e is SyscallException or ArgumentException)
        {
            local.Dispose();
            logLocal.Dispose();
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot launch NRI plugin \"{plugin.Index}-{plugin.Name}\" ({plugin.Path}): {e.Message}", e);
        }
        finally
        {
            peer.Dispose();
            logPeer.Dispose();
        }
        _ = ForwardStderrAsync(new NetworkStream(logLocal.ToSocket(), ownsSocket: true), $"{plugin.Index}-{plugin.Name}", logger);
        _ = ReapAsync(pid, $"{plugin.Index}-{plugin.Name}", logger);
        var pidFd = PidFd.TryOpen(pid);
        return (new NetworkStream(local.ToSocket(), ownsSocket: true), pid, () =>
        {
            // Like upstream: no graceful shutdown; the plugin goes with its connection.
            pidFd?.TrySendSignal(Signals.SIGKILL);
            pidFd?.Dispose();
        });
    }

    private static async Task ForwardStderrAsync(Stream stderr, string name, ILogger logger)
    {
        using var reader = new StreamReader(stderr);
        try
        {
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
                logger.LogInformation("NRI plugin {Name}: {Line}", name, line);
        }
        catch (IOException)
        {
        }
    }

    private static async Task ReapAsync(int pid, string name, ILogger logger)
    {
        var status = await ChildProcesses.WaitForExitAsync(pid).ConfigureAwait(false);
        logger.LogInformation("NRI plugin {Name} (pid {Pid}) exited with {Code}", name, pid, status.Signal is { } s ? $"signal {s}" : $"code {status.Code}");
    }
}
