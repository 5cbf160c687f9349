namespace Hull.Streaming;

/// <summary>A terminal size change sent by the client on the resize stream (JSON <c>{"Width":80,"Height":24}</c>).</summary>
public readonly record struct TerminalSize(ushort Width, ushort Height);

/// <summary>What a streaming URL was issued for. The token cache holds these.</summary>
public abstract record StreamingRequest;

/// <summary>Run <see cref="Command"/> inside container <see cref="ContainerId"/>.</summary>
public sealed record ExecRequest(string ContainerId, IReadOnlyList<string> Command, bool Tty, bool Stdin, bool Stdout, bool Stderr) : StreamingRequest;

/// <summary>Connect to the stdio of the running container <see cref="ContainerId"/>.</summary>
public sealed record AttachRequest(string ContainerId, bool Tty, bool Stdin, bool Stdout, bool Stderr) : StreamingRequest;

/// <summary>Forward ports into the network namespace of pod sandbox <see cref="PodSandboxId"/>.</summary>
public sealed record PortForwardRequest(string PodSandboxId, IReadOnlyList<int> Ports) : StreamingRequest;

/// <summary>
/// The client's streams for one exec or attach session. <see cref="Stdin"/> reads what the client
/// types and returns 0 when the client closed stdin; <see cref="Stdout"/> and <see cref="Stderr"/>
/// are written by the runtime (with a TTY, stderr is null and everything goes to stdout).
/// </summary>
public sealed class StreamingChannels
{
    public StreamingChannels(Stream? stdin, Stream? stdout, Stream? stderr, bool tty, IAsyncEnumerable<TerminalSize> resizeEvents)
    {
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        Tty = tty;
        ResizeEvents = resizeEvents;
    }

    public Stream? Stdin { get; }
    public Stream? Stdout { get; }
    public Stream? Stderr { get; }
    public bool Tty { get; }

    /// <summary>Terminal resizes, in order; empty without a TTY. Ends when the client closes the resize stream or the session ends.</summary>
    public IAsyncEnumerable<TerminalSize> ResizeEvents { get; }
}

/// <summary>
/// What the streaming server needs from the container runtime. The cancellation token fires when
/// the client goes away (or the server stops); the runtime must then end the session and leave no
/// process behind.
/// </summary>
public interface IStreamingRuntime
{
    /// <summary>Runs the command to completion and returns its exit code. Throwing reports an internal error to the client.</summary>
    Task<int> ExecAsync(ExecRequest request, StreamingChannels channels, CancellationToken ct);

    /// <summary>Streams the container's stdio until the container exits or the client leaves.</summary>
    Task AttachAsync(AttachRequest request, StreamingChannels channels, CancellationToken ct);

    /// <summary>
    /// Connects <paramref name="stream"/> to <paramref name="port"/> inside the pod's network namespace and copies both
    /// ways until the pod side closes (or the client leaves). It no longer reads <paramref name="stream"/> once it
    /// returns: the server then ends the client's side too (SPDY: RST_STREAM after FIN).
    /// </summary>
    Task PortForwardAsync(string podSandboxId, int port, Stream stream, CancellationToken ct);
}
