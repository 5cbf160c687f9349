using System.CommandLine;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Hull.Api.Cri;
using Hull.Linux.Processes;
using Hull.Streaming;
using Hull.Streaming.Client;

namespace Hullctl;

/// <summary>
/// <c>hullctl exec [-i] [-t] CONTAINER -- CMD...</c> and <c>hullctl attach CONTAINER</c>: CRI Exec/Attach for the URL,
/// then the streaming server over SPDY/3.1 (<c>v4.channel.k8s.io</c>) as kubectl does through the kubelet. With -t the
/// local terminal goes into raw mode and its size follows SIGWINCH. The command's exit code is hullctl's.
/// </summary>
internal static class StreamingCommands
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    public static IEnumerable<Command> Create(Option<string> address)
    {
        var container = new Argument<string>("container") { Description = "container id or unique id prefix" };
        var command = new Argument<string[]>("command") { Description = "command and arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var stdin = new Option<bool>("--stdin", "-i") { Description = "pass stdin to the command" };
        var tty = new Option<bool>("--tty", "-t") { Description = "allocate a terminal (stderr is merged into stdout)" };
        var exec = new Command("exec", "run a command in a running container with its stdio streamed") { container, command, stdin, tty };
        exec.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            bool t = parse.GetValue(tty), i = parse.GetValue(stdin);
            var request = new Hull.Api.Cri.ExecRequest { ContainerId = parse.GetValue(container)!, Tty = t, Stdin = i, Stdout = true, Stderr = !t };
            request.Cmd.AddRange(parse.GetValue(command)!);
            var response = await client.Runtime.ExecAsync(request, deadline: HullClient.In(CallTimeout), cancellationToken: ct);
            return await StreamAsync(response.Url, new RemoteCommandOptions(i, true, !t, t), ct);
        }));

        var attachContainer = new Argument<string>("container") { Description = "container id or unique id prefix" };
        var attachStdin = new Option<bool>("--stdin", "-i") { Description = "pass stdin to the container" };
        var attachTty = new Option<bool>("--tty", "-t") { Description = "the container has a terminal (stderr is merged into stdout)" };
        var attach = new Command("attach", "attach to the stdio of a running container") { attachContainer, attachStdin, attachTty };
        attach.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            bool t = parse.GetValue(attachTty), i = parse.GetValue(attachStdin);
            var request = new Hull.Api.Cri.AttachRequest { ContainerId = parse.GetValue(attachContainer)!, Tty = t, Stdin = i, Stdout = true, Stderr = !t };
            var response = await client.Runtime.AttachAsync(request, deadline: HullClient.In(CallTimeout), cancellationToken: ct);
            return await StreamAsync(response.Url, new RemoteCommandOptions(i, true, !t, t), ct);
        }));
        return [exec, attach];
    }

    private static async Task<int> StreamAsync(string url, RemoteCommandOptions options, CancellationToken ct)
    {
        try
        {
            await using var connection = await StreamingClient.ConnectSpdyAsync(new Uri(url), [StreamProtocols.RemoteCommandV4], ct);
            bool terminal = options.Tty && Terminals.IsTerminal(0);
            using var raw = terminal && options.Stdin ? Terminals.MakeRaw(0) : null;
            using var stdin = options.Stdin ? Console.OpenStandardInput() : null;
            using var stdout = Console.OpenStandardOutput();
            using var stderr = Console.OpenStandardError();
            return await StreamingClient.RunSpdyAsync(connection, options, stdin, stdout, stderr, terminal ? TerminalSizes(ct) : null, ct);
        }
        catch (StreamingUpgradeException e)
        {
            Console.Error.WriteLine($"hullctl: {e.Message}");
            return 1;
        }
        catch (RemoteCommandException e)
        {
            Console.Error.WriteLine($"hullctl: {e.Message}");
            return 1;
        }
    }

    /// <summary>The local terminal's size now and after every SIGWINCH.</summary>
    private static async IAsyncEnumerable<TerminalSize> TerminalSizes([EnumeratorCancellation] CancellationToken ct)
    {
        var changes = Channel.CreateUnbounded<bool>();
        using var winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, c => { c.Cancel = true; changes.Writer.TryWrite(true); });
        changes.Writer.TryWrite(true);
        await foreach (var _ in changes.Reader.ReadAllAsync(ct))
            if ((Terminals.TryGetWindowSize(1) ?? Terminals.TryGetWindowSize(0)) is { } size)
                yield return new TerminalSize(size.Width, size.Height);
    }
}
