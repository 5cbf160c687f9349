using Hull.Api.Cri;
using Hull.Core;
using Grpc.Core;
using Hull.Streaming;

namespace Hull.Cri;

/// <summary>Exec, Attach and PortForward: validate, then hand out a single-use URL of the streaming server.</summary>
public sealed partial class RuntimeService
{
    private StreamingServer Streaming =>
        streaming ?? throw new HullException(ErrorKind.Unavailable, "the streaming server is not running in this hulld");

    public override Task<ExecResponse> Exec(Api.Cri.ExecRequest request, ServerCallContext context)
    {
        if (request.Cmd.Count == 0) throw new HullException(ErrorKind.InvalidArgument, "Exec needs a command");
        ValidateStreams("Exec", request.Stdin, request.Stdout, request.Stderr, request.Tty);
        var id = RunningContainerId(request.ContainerId);
        var url = Streaming.GetUrl(new Hull.Streaming.ExecRequest(id, request.Cmd.ToList(), request.Tty, request.Stdin, request.Stdout, request.Stderr));
        return Task.FromResult(new ExecResponse { Url = url.ToString() });
    }

    public override Task<AttachResponse> Attach(Api.Cri.AttachRequest request, ServerCallContext context)
    {
        ValidateStreams("Attach", request.Stdin, request.Stdout, request.Stderr, request.Tty);
        var id = RunningContainerId(request.ContainerId);
        var url = Streaming.GetUrl(new Hull.Streaming.AttachRequest(id, request.Tty, request.Stdin, request.Stdout, request.Stderr));
        return Task.FromResult(new AttachResponse { Url = url.ToString() });
    }

    public override async Task<PortForwardResponse> PortForward(Api.Cri.PortForwardRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw new HullException(ErrorKind.InvalidArgument, "PortForward needs a pod sandbox id");
        foreach (var port in request.Port)
            if (port is < 1 or > 65535) throw new HullException(ErrorKind.InvalidArgument, $"PortForward: port {port} is out of range 1..65535");
        var (pod, _) = await pods.StatusAsync(request.PodSandboxId, verbose: false, context.CancellationToken).ConfigureAwait(false);
        if (pod.State != Hull.Sandbox.Controller.SandboxState.Ready)
            throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{pod.Id}\" is not ready; cannot forward ports to it");
        var url = Streaming.GetUrl(new Hull.Streaming.PortForwardRequest(pod.Id, request.Port.ToList()));
        return new PortForwardResponse { Url = url.ToString() };
    }

    private static void ValidateStreams(string rpc, bool stdin, bool stdout, bool stderr, bool tty)
    {
        if (!stdin && !stdout && !stderr)
            throw new HullException(ErrorKind.InvalidArgument, $"{rpc}: one of stdin, stdout, or stderr must be set");
        if (tty && stderr)
            throw new HullException(ErrorKind.InvalidArgument, $"{rpc}: tty and stderr cannot both be true (a terminal has one output stream)");
    }

    private string RunningContainerId(string idOrPrefix)
    {
        if (string.IsNullOrEmpty(idOrPrefix)) throw new HullException(ErrorKind.InvalidArgument, "a container id is required");
        return containers.Running(idOrPrefix, "cannot stream to it").Record.Id;
    }
}
