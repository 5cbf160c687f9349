using System.CommandLine;
using Hull.Config;
using Hulld;

var configOption = new Option<string?>("--config") { Description = $"config file (default {Defaults.ConfigPath} when it exists)" };
var addressOption = new Option<string?>("--address") { Description = "CRI socket path (overrides [grpc] address)" };
var rootOption = new Option<string?>("--root") { Description = "persistent state directory (overrides root)" };
var stateOption = new Option<string?>("--state") { Description = "runtime state directory (overrides state)" };
var logLevelOption = new Option<string?>("--log-level") { Description = "trace, debug, info, warn, error" };
var strictOption = new Option<bool>("--strict-config") { Description = "unknown config keys are fatal" };

var root = new RootCommand("hulld: the Hull container runtime daemon (CRI v1)")
{
    configOption, addressOption, rootOption, stateOption, logLevelOption, strictOption,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var options = new DaemonOptions(parse.GetValue(configOption), parse.GetValue(addressOption), parse.GetValue(rootOption),
        parse.GetValue(stateOption), parse.GetValue(logLevelOption), parse.GetValue(strictOption));
    return await Daemon.RunAsync(options).ConfigureAwait(false);
});
ConfigCommands.AddTo(root, configOption, strictOption);
NodeConditionsCommand.AddTo(root, configOption, addressOption, logLevelOption);
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
