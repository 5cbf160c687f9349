using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Google.Protobuf;
using Grpc.Core;
using Hull.Api.Cri;
using Hull.Grpc;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;

namespace Hull.Bench.Grpc;

/// <summary>
/// Measures the per-call cost of Hull.Grpc's unary server path on
/// /runtime.v1.RuntimeService/Version, the call hack/bench-grpc.sh drives:
/// <list type="bullet">
/// <item><c>loop [calls] [rounds]</c>: an in-process server on a unix socket driven by a blocking raw HTTP/2
/// client (pre-encoded frames, one stream at a time, no allocations of its own); prints calls/s, bytes
/// allocated per call (whole process) and process CPU µs per call (server + client).</item>
/// <item><c>serve SOCKET</c>: the same server alone, for bench/grpc-load and perf (prints its pid).</item>
/// <item><c>telemetry-off [calls]</c>: what a call pays for telemetry when nothing listens (no metrics, no tracing):
/// ns per <see cref="ServerCallTelemetry"/> Begin + End.</item>
/// <item><c>bdn [BenchmarkDotNet args]</c>: <see cref="UnaryBenchmarks"/> under BenchmarkDotNet.</item>
/// </list>
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "serve" when args.Length == 2:
                return await ServeAsync(args[1]);
            case "loop":
            {
                int calls = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200_000;
                int rounds = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 3;
                await LoopAsync(calls, rounds);
                return 0;
            }
            case "alloc":
            {
                // Which types the unary path allocates: GC AllocationTick samples (one per ~100 KB) by type.
                using var bench = await UnaryHarness.StartAsync();
                bench.Run(20_000);
                using var listener = new AllocationListener();
                bench.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200_000);
                listener.Dispose();
                foreach (var (type, bytes) in listener.ByType.OrderByDescending(kv => kv.Value).Take(40))
                    Console.WriteLine($"{bytes / 1024,10} KiB  {type}");
                return 0;
            }
            case "telemetry-off":
                TelemetryOff(args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200_000_000);
                return 0;
            case "bdn":
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args[1..]);
                return 0;
            default:
                Console.Error.WriteLine("usage: Hull.Bench.Grpc loop [calls] [rounds] | serve SOCKET | telemetry-off [calls] | bdn [args]");
                return 2;
        }
    }

    private static async Task<int> ServeAsync(string socket)
    {
        File.Delete(socket);
        await using var server = BenchServer.Create();
        server.ListenUnix(socket);
        Console.WriteLine($"serving on {socket}, pid {Environment.ProcessId}");
        var stop = new TaskCompletionSource();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
        using var intr = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
        await stop.Task;
        await server.StopAsync(TimeSpan.FromSeconds(1));
        File.Delete(socket);
        return 0;
    }

    private static void TelemetryOff(long calls)
    {
        var telemetry = new ServerCallTelemetry();
        for (int round = 0; round < 3; round++)
        {
            long start = Stopwatch.GetTimestamp();
            for (long i = 0; i < calls; i++)
            {
                // With nothing listening Begin returns before it looks at the stream.
                var scope = telemetry.Begin(null!);
                scope.End(StatusCode.OK, null);
            }
            var elapsed = Stopwatch.GetElapsedTime(start);
            Console.WriteLine($"{calls} calls: {elapsed.TotalNanoseconds / calls:F2} ns per call for Begin + End with telemetry off");
        }
    }

    private static async Task LoopAsync(int calls, int rounds)
    {
        using var bench = await UnaryHarness.StartAsync();
        bench.Run(Math.Min(calls, 20_000)); // warm-up: tiering, pools
        Console.WriteLine("calls      calls/s   alloc B/call   process CPU µs/call   gen0");
        for (int r = 0; r < rounds; r++)
        {
            int gen0 = GC.CollectionCount(0);
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            long start = Stopwatch.GetTimestamp();
            bench.Run(calls);
            var elapsed = Stopwatch.GetElapsedTime(start);
            var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
            long bytes = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            Console.WriteLine($"{calls,-10} {calls / elapsed.TotalSeconds,8:F0}   {(double)bytes / calls,12:F1}   {cpuUsed.TotalMicroseconds / calls,19:F1}   {GC.CollectionCount(0) - gen0,4}");
        }
    }
}

/// <summary>Sums the runtime's AllocationTick events by type name.</summary>
internal sealed class AllocationListener : System.Diagnostics.Tracing.EventListener
{
    public Dictionary<string, long> ByType { get; } = new();

    protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
    }

    protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
    {
        if (e.EventName != "GCAllocationTick_V4" || e.Payload is null || e.PayloadNames is null) return;
        string type = e.Payload[e.PayloadNames.IndexOf("TypeName")] as string ?? "?";
        long amount = Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("AllocationAmount64")], System.Globalization.CultureInfo.InvariantCulture);
        lock (ByType) ByType[type] = ByType.GetValueOrDefault(type) + amount;
    }
}

/// <summary>The CRI Version RPC as hulld answers it (Hull.Cri.RuntimeService.Version).</summary>
public sealed class VersionOnlyRuntimeService : RuntimeService.RuntimeServiceBase
{
    public override Task<VersionResponse> Version(VersionRequest request, ServerCallContext context) =>
        Task.FromResult(new VersionResponse { Version = "0.1.0", RuntimeName = "hull", RuntimeVersion = "0.1.0", RuntimeApiVersion = "v1" });
}

internal static class BenchServer
{
    public static GrpcServer Create()
    {
        var server = new GrpcServer(new GrpcServerOptions());
        RuntimeService.BindService(server, new VersionOnlyRuntimeService());
        // hulld logs failed calls only; an observer is installed as there.
        server.CallCompleted = call => { if (call.Status != StatusCode.OK) Console.Error.WriteLine($"{call.Method}: {call.Status} {call.Message}"); };
        return server;
    }
}

/// <summary>
/// A server on a temp unix socket plus a blocking client that sends grpc-go-shaped unary requests (HEADERS, then
/// DATA with END_STREAM, in one write) and reads until the response trailers end the stream.
/// </summary>
public sealed class UnaryHarness : IDisposable
{
    private readonly GrpcServer _server;
    private readonly string _dir;
    private readonly Socket _socket;
    private readonly byte[] _firstHeaders, _nextHeaders, _data;
    private readonly byte[] _request = new byte[4096];
    private readonly byte[] _receive = new byte[64 * 1024];
    private int _receiveStart, _receiveEnd;
    private int _streamId = 1;
    private int _unacknowledgedData; // connection window the server used; returned like grpc-go, past a quarter

    private UnaryHarness(GrpcServer server, string dir, Socket socket)
    {
        _server = server;
        _dir = dir;
        _socket = socket;
        var encoder = new HpackEncoder();
        HeaderField[] headers =
        [
            new(":method", "POST"), new(":scheme", "http"), new(":path", "/runtime.v1.RuntimeService/Version"),
            new(":authority", "localhost"), new("content-type", "application/grpc"), new("user-agent", "grpc-go/1.33.3"),
            new("te", "trailers"),
        ];
        _firstHeaders = Encode(encoder, headers);
        _nextHeaders = Encode(encoder, headers);
        var message = new VersionRequest { Version = "0.1.0" }.ToByteArray();
        _data = new byte[GrpcProtocol.MessagePrefixLength + message.Length];
        GrpcProtocol.WritePrefix(_data, message.Length);
        message.CopyTo(_data, GrpcProtocol.MessagePrefixLength);
    }

    private static byte[] Encode(HpackEncoder encoder, HeaderField[] headers)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        encoder.Encode(headers, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    public static async Task<UnaryHarness> StartAsync()
    {
        var dir = Directory.CreateTempSubdirectory("hull-bench-grpc-").FullName;
        var path = Path.Combine(dir, "grpc.sock");
        var server = BenchServer.Create();
        server.ListenUnix(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var harness = new UnaryHarness(server, dir, socket);
        harness.Handshake();
        return harness;
    }

    private void Handshake()
    {
        var preface = Http2Limits.ClientPreface.ToArray();
        _socket.Send(preface);
        Span<byte> settings = stackalloc byte[Http2Limits.FrameHeaderLength];
        new FrameHeader(0, FrameType.Settings, FrameFlags.None, 0).Write(settings);
        _socket.Send(settings);
        // Wait for the server's SETTINGS and ack it.
        while (true)
        {
            var (header, _) = ReadFrame();
            if (header.Type == FrameType.Settings && !header.Has(FrameFlags.Ack))
            {
                new FrameHeader(0, FrameType.Settings, FrameFlags.Ack, 0).Write(settings);
                _socket.Send(settings);
                return;
            }
        }
    }

    /// <summary>Issues <paramref name="calls"/> unary calls one after the other.</summary>
    public void Run(int calls)
    {
        for (int i = 0; i < calls; i++) Call();
    }

    public void Call()
    {
        int id = _streamId;
        _streamId += 2;
        var headers = id == 1 ? _firstHeaders : _nextHeaders;
        int n = 0;
        new FrameHeader(headers.Length, FrameType.Headers, FrameFlags.EndHeaders, id).Write(_request.AsSpan(n));
        n += Http2Limits.FrameHeaderLength;
        headers.CopyTo(_request, n);
        n += headers.Length;
        new FrameHeader(_data.Length, FrameType.Data, FrameFlags.EndStream, id).Write(_request.AsSpan(n));
        n += Http2Limits.FrameHeaderLength;
        _data.CopyTo(_request, n);
        n += _data.Length;
        _socket.Send(_request.AsSpan(0, n));
        while (true)
        {
            var (header, payload) = ReadFrame();
            if (header.Type == FrameType.Ping && !header.Has(FrameFlags.Ack))
            {
                new FrameHeader(8, FrameType.Ping, FrameFlags.Ack, 0).Write(_request);
                _receive.AsSpan(payload, 8).CopyTo(_request.AsSpan(Http2Limits.FrameHeaderLength));
                _socket.Send(_request.AsSpan(0, Http2Limits.FrameHeaderLength + 8));
                continue;
            }
            if (header.Type == FrameType.Data && (_unacknowledgedData += header.Length) >= Http2Limits.DefaultInitialWindowSize / 4)
            {
                new FrameHeader(4, FrameType.WindowUpdate, FrameFlags.None, 0).Write(_request);
                BinaryPrimitives.WriteUInt32BigEndian(_request.AsSpan(Http2Limits.FrameHeaderLength), (uint)_unacknowledgedData);
                _socket.Send(_request.AsSpan(0, Http2Limits.FrameHeaderLength + 4));
                _unacknowledgedData = 0;
            }
            if (header.Type == FrameType.RstStream || header.Type == FrameType.GoAway)
                throw new InvalidOperationException($"server answered {header.Type}");
            if (header.StreamId == id && header.Type == FrameType.Headers && header.Has(FrameFlags.EndStream)) return;
        }
    }

    /// <summary>Reads one frame; returns its header and the offset of its payload in the receive buffer.</summary>
    private (FrameHeader, int) ReadFrame()
    {
        Fill(Http2Limits.FrameHeaderLength);
        var header = FrameHeader.Parse(_receive.AsSpan(_receiveStart, Http2Limits.FrameHeaderLength));
        Fill(Http2Limits.FrameHeaderLength + header.Length);
        int payload = _receiveStart + Http2Limits.FrameHeaderLength;
        _receiveStart = payload + header.Length;
        return (header, payload);
    }

    private void Fill(int needed)
    {
        if (_receiveEnd - _receiveStart >= needed) return;
        if (_receiveStart > 0)
        {
            _receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart).CopyTo(_receive);
            _receiveEnd -= _receiveStart;
            _receiveStart = 0;
        }
        while (_receiveEnd < needed)
        {
            int read = _socket.Receive(_receive.AsSpan(_receiveEnd));
            if (read == 0) throw new EndOfStreamException("server closed the connection");
            _receiveEnd += read;
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        _server.StopAsync(TimeSpan.FromSeconds(1)).GetAwaiter().GetResult();
        _server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One unary Version call over a unix socket, end to end (client cost included, but it allocates nothing).</summary>
[MemoryDiagnoser]
public class UnaryBenchmarks
{
    private UnaryHarness? _harness;

    [GlobalSetup]
    public void Setup() => _harness = UnaryHarness.StartAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => _harness?.Dispose();

    [Benchmark]
    public void UnaryVersion() => _harness!.Call();
}
