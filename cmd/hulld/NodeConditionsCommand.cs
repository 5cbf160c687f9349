using System.CommandLine;
using System.Globalization;
using Hull.Api.Admin;
using DeprecationWarning = Hull.Core.Deprecations.DeprecationWarning;
using Hull.Config;
using Hull.Core.Deprecations;
using Grpc.Core;
using Grpc.Net.Client;
using Hull.Grpc.Client;
using Hull.Kube;
using Hulld.Composition;
using Microsoft.Extensions.Logging;

namespace Hulld;

/// <summary>
/// <c>hulld node-conditions</c>: the node-condition reporter as its own process, for the DaemonSet installer's pod. hulld
/// on the node runs outside a pod and, with no kubeconfig, has no credentials; the pod has its service account's and the
/// node's name (downward API, NODE_NAME). It reads the node's config (for the section and the ignored IDs) and the
/// warnings from hulld's admin API on its socket, and publishes exactly as hulld would. It idles when hulld publishes
/// itself (a kubeconfig is set) or publishing is disabled, so the pod stays running either way.
/// </summary>
internal static class NodeConditionsCommand
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    public static void AddTo(RootCommand root, Option<string?> configOption, Option<string?> addressOption, Option<string?> logLevelOption)
    {
        addressOption.Recursive = true;
        logLevelOption.Recursive = true;
        var command = new Command("node-conditions",
            "publish the node's deprecation condition on its Kubernetes Node with in-cluster credentials, reading the warnings from hulld's socket (the DaemonSet's reporter)");
        command.SetAction((parse, cancellationToken) =>
            RunAsync(parse.GetValue(configOption), parse.GetValue(addressOption), parse.GetValue(logLevelOption), cancellationToken));
        root.Subcommands.Add(command);
    }

    private static async Task<int> RunAsync(string? configPath, string? address, string? logLevel, CancellationToken cancellationToken)
    {
        ConfigLoadResult loaded;
        BoundOptions bound;
        try
        {
            loaded = ConfigCommandsLogic.LoadFileOrDefaults(configPath, strict: false);
            bound = BoundOptions.Bind(new ConfigOverrides(null, null, address, logLevel).ApplyTo(loaded.Config));
        }
        catch (Exception e) when (e is ConfigException or Hull.Core.HullException)
        {
            Console.Error.WriteLine($"hulld node-conditions: {e.Message}");
            return 2;
        }
        using var loggers = Daemon.CreateLoggers(bound.Logging);
        var log = loggers.CreateLogger("node-conditions");
        if (loaded.HasErrors)
        {
            log.LogError("config {Path} has errors:\n{Diagnostics}", loaded.SourcePath, ConfigCommandsLogic.Format(loaded.Diagnostics));
            return 2;
        }
        var options = bound.NodeConditions;
        if (!options.Enable || options.Kubeconfig.Length > 0)
        {
            log.LogInformation("node conditions: {Why}; idling", !options.Enable
                ? $"disabled in {loaded.SourcePath ?? "the default config"} (enable = false)"
                : $"hulld publishes them itself with kubeconfig {options.Kubeconfig}");
            try { await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false); } catch (OperationCanceledException) { }
            return 0;
        }
        using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = UnixSocketHttpHandler.Create(bound.Socket.Address) });
        var admin = new Hull.Api.Admin.Admin.AdminClient(channel);
        async Task<IReadOnlyList<DeprecationWarning>> ReadWarnings(CancellationToken ct)
        {
            try
            {
                var response = await admin.DeprecationsAsync(new DeprecationsRequest(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct)
                    .ResponseAsync.ConfigureAwait(false);
                return response.Warnings.Select(w => new DeprecationWarning(w.Id, w.Message,
                    DateTimeOffset.Parse(w.LastOccurrence, CultureInfo.InvariantCulture), w.Occurrences)).ToArray();
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
            {
                throw new DeprecationSourceException($"cannot read the deprecation warnings from hulld at {bound.Socket.Address}: {e.Message}", e);
            }
        }
        var reporter = new NodeConditionReporter(options, ReadWarnings, log);
        await reporter.RunAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }
}
