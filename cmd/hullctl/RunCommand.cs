using System.CommandLine;
using Hull.Api.Cri;

namespace Hullctl;

/// <summary>
/// <c>hullctl run IMAGE [-- CMD...]</c>: the kubelet's sequence in one command, for trying a node
/// without a cluster. It runs a pod with one container, waits for it to exit, prints its log and
/// removes both, through the same CRI calls the kubelet makes.
/// </summary>
internal static class RunCommand
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromMinutes(2);

    public static Command Create(Option<string> address)
    {
        var image = new Argument<string>("image") { Description = "an image present on the node or pullable from its registry" };
        var command = new Argument<string[]>("command") { Description = "command and arguments (default: the image's)", Arity = ArgumentArity.ZeroOrMore };
        var name = new Option<string>("--name") { Description = "pod and container name", DefaultValueFactory = _ => "hull-run" };
        var keep = new Option<bool>("--keep") { Description = "leave the pod and container in place" };
        var run = new Command("run", "run a command in a new pod and print its output") { image, command, name, keep };
        run.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, client =>
            RunAsync(client, parse.GetValue(image)!, parse.GetValue(command) ?? [], parse.GetValue(name)!, parse.GetValue(keep), ct)));
        return run;
    }

    private static async Task<int> RunAsync(HullClient client, string image, string[] command, string name, bool keep, CancellationToken ct)
    {
        var logDir = Directory.CreateTempSubdirectory("hull-run-").FullName;
        var podConfig = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "default", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
            Hostname = name,
            LogDirectory = logDir,
            Linux = new LinuxPodSandboxConfig(),
        };
        var pod = await client.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig }, deadline: HullClient.In(CallTimeout), cancellationToken: ct);
        string? containerId = null;
        try
        {
            await client.PullIfMissingAsync(image, ct);
            var config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = name },
                Image = new ImageSpec { Image = image },
                LogPath = $"{name}.log",
            };
            if (command.Length > 0)
            {
                config.Command.Add(command[0]);
                config.Args.AddRange(command.Skip(1));
            }
            containerId = (await client.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = pod.PodSandboxId, Config = config, SandboxConfig = podConfig,
            }, deadline: HullClient.In(CallTimeout), cancellationToken: ct)).ContainerId;
            await client.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId }, deadline: HullClient.In(CallTimeout), cancellationToken: ct);
            var status = await WaitForExitAsync(client, containerId, ct);
            var log = Path.Combine(logDir, $"{name}.log");
            if (File.Exists(log))
                foreach (var line in await File.ReadAllLinesAsync(log, ct)) Console.WriteLine(CriLogMessage(line));
            Console.Error.WriteLine($"pod {pod.PodSandboxId[..12]} container {containerId[..12]} exited with {status.ExitCode} ({status.Reason})");
            return status.ExitCode;
        }
        finally
        {
            if (!keep)
            {
                if (containerId is not null)
                    await client.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = containerId }, deadline: HullClient.In(CallTimeout));
                await client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.PodSandboxId }, deadline: HullClient.In(CallTimeout));
                await client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.PodSandboxId }, deadline: HullClient.In(CallTimeout));
                Directory.Delete(logDir, recursive: true);
            }
        }
    }

    private static async Task<ContainerStatus> WaitForExitAsync(HullClient client, string id, CancellationToken ct)
    {
        while (true)
        {
            var status = (await client.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, deadline: HullClient.In(CallTimeout), cancellationToken: ct)).Status;
            if (status.State == ContainerState.ContainerExited) return status;
            await Task.Delay(100, ct);
        }
    }

    /// <summary>The message part of a CRI log line: "&lt;time&gt; &lt;stream&gt; &lt;P|F&gt; &lt;message&gt;".</summary>
    private static string CriLogMessage(string line)
    {
        var parts = line.Split(' ', 4);
        return parts.Length == 4 ? parts[3] : line;
    }
}
