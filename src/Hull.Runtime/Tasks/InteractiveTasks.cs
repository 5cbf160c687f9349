using System.Net.Sockets;
using Hull.Linux.Processes;

namespace Hull.Runtime.Tasks;

/// <summary>A command to run in a container with its stdio streamed (CRI Exec through the streaming server).</summary>
public sealed record InteractiveExecRequest(IReadOnlyList<string> Command, bool Tty, bool Stdin, bool Stdout, bool Stderr)
{
    /// <summary>Initial terminal size (columns, rows); only with <see cref="Tty"/>.</summary>
    public (ushort Width, ushort Height)? InitialSize { get; init; }
}

/// <summary>
/// The streaming side of a task endpoint: exec sessions with live stdio, and attaching to a container's stdio. A
/// sandbox's <see cref="ITaskService"/> offers it when it can (the conmon + runc <see cref="TaskManager"/> does).
/// </summary>
public interface IInteractiveTaskService
{
    /// <summary>Starts the command in the running container; the session owns the process until it is disposed.</summary>
    Task<InteractiveExec> StartExecAsync(string id, InteractiveExecRequest request, CancellationToken cancellationToken = default);

    /// <summary>Connects to the container's stdio through its monitor's attach socket.</summary>
    Task<AttachConnection> AttachAsync(string id, CancellationToken cancellationToken = default);
}

/// <summary>
/// One running exec session. Without a TTY, <see cref="Stdin"/>, <see cref="Stdout"/> and <see cref="Stderr"/> are
/// the process's own descriptors (unix socket pairs); with a TTY, <see cref="Stdin"/> and <see cref="Stdout"/> are
/// both the terminal's master side and <see cref="Stderr"/> is null. Disposing kills the process (and its process
/// group) if it still runs and cleans up; nothing is left behind.
/// </summary>
public abstract class InteractiveExec : IAsyncDisposable
{
    public abstract Stream? Stdin { get; }
    public abstract Stream? Stdout { get; }
    public abstract Stream? Stderr { get; }
    public abstract bool Tty { get; }

    /// <summary>Completes with the exit code (128 + signal for a signalled process) when the command has ended.</summary>
    public abstract Task<int> Exited { get; }

    /// <summary>Signals end of input to the process (no-op with a TTY, where the client sends ^D itself).</summary>
    public abstract void CloseStdin();

    /// <summary>Changes the terminal size; ignored without a TTY.</summary>
    public abstract void Resize(ushort width, ushort height);

    /// <summary>Kills the command and everything in its process group.</summary>
    public abstract void Kill();

    public abstract ValueTask DisposeAsync();
}

/// <summary>
/// A connection to conmon's attach socket (SOCK_SEQPACKET): each packet conmon sends starts with the pipe it came
/// from (conmon's enum: 1 stdin, 2 stdout, 3 stderr — CRI-O's AttachPipeStdout/Stderr), the rest is data; what is written goes to the container's stdin. The terminal is
/// resized through conmon's ctl FIFO (<c>1 &lt;height&gt; &lt;width&gt;\n</c>), as CRI-O does.
/// </summary>
public sealed class AttachConnection : IDisposable
{
    public const byte StdoutPipe = 2, StderrPipe = 3;
    /// <summary>conmon's packets are at most 8192 bytes of data plus the stream byte.</summary>
    public const int MaxPacket = 8192 + 1;

    private readonly Socket _socket;
    private readonly string _controlFifo;

    public AttachConnection(Socket socket, string controlFifo)
    {
        _socket = socket;
        _controlFifo = controlFifo;
    }

    /// <summary>Reads one packet into <paramref name="buffer"/> (at least <see cref="MaxPacket"/> long); 0 when conmon closed the socket.</summary>
    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);

    public async ValueTask SendStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        // One packet per write, no bigger than conmon reads at once.
        while (!data.IsEmpty)
        {
            var chunk = data[..Math.Min(data.Length, 8192)];
            await _socket.SendAsync(chunk, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[chunk.Length..];
        }
    }

    /// <summary>Shuts down our sending side: conmon then closes the container's stdin if it runs with stdin_once.</summary>
    public void CloseStdin()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public void Resize(ushort width, ushort height)
    {
        using var fifo = Descriptors.TryOpenFifoForWrite(_controlFifo);
        if (fifo is null) return; // conmon is gone, or the container has no terminal to resize
        fifo.Write(System.Text.Encoding.ASCII.GetBytes($"1 {height} {width}\n"));
    }

    public void Dispose() => _socket.Dispose();
}
