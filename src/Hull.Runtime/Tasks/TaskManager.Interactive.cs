using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Linux;
using Hull.Linux.Processes;
using Hull.Runtime.Spec;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Hull.Runtime.Tasks;

/// <summary>
/// Streaming exec and attach. Exec runs <c>runc exec --process</c> in the foreground as hulld's child (posix_spawn):
/// without a TTY the command gets unix socket pairs as stdin/stdout/stderr directly (runc passes its stdio through);
/// with a TTY (<c>--tty</c>) runc's stdio is the slave of a pty hulld allocates, runc copies between it and the
/// container's own pty, and a resize sets our pty's size and sends runc SIGWINCH (runc refuses
/// <c>--console-socket</c> unless it detaches, and a detached runc would lose the exit code). runc's exit code is the
/// command's. This is not a conmon exec session: the session lives exactly as long as its client (kubelet's streaming
/// sessions do not survive a runtime restart either), and ending it kills the command's process group and runc.
/// Attach connects to conmon's attach socket.
/// </summary>
public sealed partial class TaskManager
{
    public async Task<InteractiveExec> StartExecAsync(string id, InteractiveExecRequest request, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        if (request.Command.Count == 0) throw new HullException(ErrorKind.InvalidArgument, $"exec in container \"{id}\" needs a command");
        var execId = Ids.NewShort();
        var dir = Path.Combine(Paths.ExecDirectory, $"{id}-{execId}");
        Directory.CreateDirectory(dir);
        var session = new RuncExecSession(id, dir, request.Tty, _logger);
        try
        {
            var size = request.InitialSize is { Width: > 0, Height: > 0 } s ? new OciConsoleSize((uint)s.Height, (uint)s.Width) : null;
            var specFile = Path.Combine(dir, "process.json");
            await File.WriteAllBytesAsync(specFile, await ExecProcessJsonAsync(entry.Record, request.Command, request.Tty, size, cancellationToken)
                .ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            var arguments = new List<string>(_runc.GlobalArguments) { "exec", "--process", specFile, "--pid-file", session.PidFile };
            if (request.Tty) arguments.Add("--tty");
            arguments.Add(id);
            _logger.LogDebug("exec in container {Id}: {Runtime} {Arguments}", id, RuntimePath, string.Join(' ', arguments));
            session.Spawn(RuntimePath, arguments, request);
            return session;
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task<AttachConnection> AttachAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        if (TryReadExit(entry) is not null)
            throw new HullException(ErrorKind.FailedPrecondition, $"container \"{id}\" has exited; cannot attach to it");
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            var path = Paths.AttachSocket(id);
            if (System.Text.Encoding.UTF8.GetByteCount(path) < 108)
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
            else
            {
                // Longer than sun_path: reach it through a descriptor of its directory.
                using var directory = Terminals.OpenDirectoryPath(Path.GetDirectoryName(path)!);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint($"/proc/self/fd/{directory.Fd}/{Path.GetFileName(path)}"), cancellationToken)
                    .ConfigureAwait(false);
            }
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new HullException(ErrorKind.FailedPrecondition,
                $"cannot attach to container \"{id}\": its monitor's attach socket {Paths.AttachSocket(id)} does not answer ({e.Message})", e);
        }
        return new AttachConnection(socket, TaskPaths.ControlFifo(entry.Record.BundlePath));
    }

    /// <summary>One foreground <c>runc exec</c> and its stdio.</summary>
    private sealed class RuncExecSession(string containerId, string directory, bool tty, ILogger logger) : InteractiveExec
    {
        private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _runcPid;
        private Stream? _stdin, _stdout, _stderr;
        private Socket? _stdinSocket;
        private Socket? _capture;
        private Task<string> _captured = Task.FromResult("");
        private SafeFileDescriptor? _terminal;
        private int _disposed;

        public string PidFile => Path.Combine(directory, "pid");

        public override Stream? Stdin => _stdin;
        public override Stream? Stdout => _stdout;
        public override Stream? Stderr => _stderr;
        public override bool Tty => tty;
        public override Task<int> Exited => _exited.Task;

        public void Spawn(string runtimePath, List<string> arguments, InteractiveExecRequest request)
        {
            var descriptors = new Dictionary<int, System.Runtime.InteropServices.SafeHandle>();
            var childEnds = new List<SafeFileDescriptor>();
            try
            {
                // runc's own errors go to its stderr: without stderr requested we keep them for the error message.
                var (captureParent, captureChild) = Descriptors.CreateSocketPair();
                childEnds.Add(captureChild);
                _capture = captureParent.ToSocket();
                descriptors[2] = captureChild;
                if (tty)
                {
                    // runc in the foreground with --tty copies between its own stdio terminal and the container's pty
                    // (and resizes the latter on SIGWINCH): give it the slave of a pty whose master we keep.
                    var (master, slave) = Terminals.OpenPty();
                    _terminal = master;
                    childEnds.Add(slave);
                    if (request.InitialSize is { } size && size.Width > 0 && size.Height > 0) Terminals.SetWindowSize(master, size.Height, size.Width);
                    descriptors[0] = slave;
                    descriptors[1] = slave;
                    descriptors[2] = slave;
                    var handle = new SafeFileHandle(master.DangerousGetHandle(), ownsHandle: false);
                    // Separate streams for the two directions: reads block a pool thread until output or EIO (last slave closed).
                    _stdin = new FileStream(handle, FileAccess.Write, bufferSize: 0);
                    _stdout = new FileStream(handle, FileAccess.Read, bufferSize: 0);
                }
                else
                {
                    if (request.Stdin)
                    {
                        var (parent, child) = Descriptors.CreateSocketPair();
                        childEnds.Add(child);
                        _stdinSocket = parent.ToSocket();
                        _stdin = new NetworkStream(_stdinSocket, ownsSocket: true);
                        descriptors[0] = child;
                    }
                    if (request.Stdout)
                    {
                        var (parent, child) = Descriptors.CreateSocketPair();
                        childEnds.Add(child);
                        _stdout = new NetworkStream(parent.ToSocket(), ownsSocket: true);
                        descriptors[1] = child;
                    }
                    if (request.Stderr)
                    {
                        var (parent, child) = Descriptors.CreateSocketPair();
                        childEnds.Add(child);
                        _stderr = new NetworkStream(parent.ToSocket(), ownsSocket: true);
                        descriptors[2] = child;
                        // The command's stderr is the client's; runc's errors go there too.
                    }
                }
                if (descriptors[2] != captureChild)
                {
                    _capture.Dispose();
                    _capture = null;
                }
                else _captured = Descriptors.ReadAllAsync(_capture, 64 << 10);
                var environment = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["PATH"] = Hull.Core.Processes.Executables.SearchPath,
                };
                if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg) environment["XDG_RUNTIME_DIR"] = xdg;
                try
                {
                    _runcPid = ProcessSpawner.Spawn(new SpawnRequest(runtimePath, arguments)
                    {
                        Environment = environment,
                        WorkingDirectory = directory,
                        Descriptors = descriptors,
                    });
                }
                catch (SyscallException e)
                {
                    throw new HullException(ErrorKind.FailedPrecondition, $"cannot start {runtimePath}: {e.Message}", e);
                }
                _ = WaitAsync();
            }
            finally
            {
                foreach (var end in childEnds) end.Dispose();
            }
        }

        private async Task WaitAsync()
        {
            try
            {
                var status = await ChildProcesses.WaitForExitAsync(_runcPid).ConfigureAwait(false);
                // runc reports the command's status; when runc itself failed before starting it, say why.
                if (status.Code != 0 && !File.Exists(PidFile))
                {
                    string text = "";
                    try
                    {
                        text = await _captured.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }
                    var message = RuncClient.RuncMessage(text);
                    if (_capture is not null && message != "(no error output)")
                    {
                        var kind = RuncClient.IsNotFound(message) ? ErrorKind.NotFound
                            : message.Contains("not running", StringComparison.OrdinalIgnoreCase) || message.Contains("stopped", StringComparison.OrdinalIgnoreCase)
                                ? ErrorKind.FailedPrecondition : ErrorKind.Internal;
                        _exited.TrySetException(new HullException(kind, $"exec in container \"{containerId}\" failed: {message}"));
                        return;
                    }
                }
                _exited.TrySetResult(status.Code);
            }
            catch (Exception e)
            {
                _exited.TrySetException(e);
            }
        }

        public override void CloseStdin()
        {
            if (tty) return;
            try
            {
                _stdinSocket?.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        public override void Resize(ushort width, ushort height)
        {
            if (_terminal is null || width == 0 || height == 0) return;
            try
            {
                Terminals.SetWindowSize(_terminal, height, width);
                if (_runcPid > 0 && !_exited.Task.IsCompleted) Signals.TrySend(_runcPid, Signals.SIGWINCH);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                logger.LogDebug("resizing the terminal of an exec in {Id}: {Message}", containerId, e.Message);
            }
        }

        public override void Kill()
        {
            if (ReadPidFile(PidFile) is int pid and > 0) KillExec(pid);
            if (_runcPid > 0 && !_exited.Task.IsCompleted) Signals.TrySend(_runcPid, Signals.SIGKILL);
        }

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            if (_runcPid > 0)
            {
                if (!_exited.Task.IsCompleted) Kill();
                try
                {
                    await _exited.Task.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
                }
                catch (Exception e) when (e is TimeoutException or HullException or InvalidOperationException or IOException)
                {
                }
                // The command may have written its pid just as runc died: make sure it is gone.
                if (ReadPidFile(PidFile) is int pid and > 0) KillExec(pid);
            }
            foreach (var s in new IDisposable?[] { _stdin, _stdout, _stderr, _capture, _terminal }) s?.Dispose();
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
