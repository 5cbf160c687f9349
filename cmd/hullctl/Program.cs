using System.CommandLine;
using System.Text.Json;
using Google.Protobuf;
using Hullctl;

var addressOption = new Option<string>("--address", "-a")
{
    Description = "hulld socket",
    DefaultValueFactory = _ => Environment.GetEnvironmentVariable("HULL_ADDRESS") ?? "/run/hull/hull.sock",
    Recursive = true,
};
var formatOption = new Option<string>("--format", "-o")
{
    Description = "table or json",
    DefaultValueFactory = _ => "table",
};
formatOption.AcceptOnlyFromAmong("table", "json");

var JsonOptions = JsonOptionsFactory();
var root = new RootCommand("hullctl: administer a Hull node runtime") { addressOption };

var version = new Command("version", "client and daemon versions");
version.SetAction(parse => Run(parse, async client =>
{
    var v = await client.VersionAsync();
    var info = await client.ServerInfoAsync();
    Console.WriteLine($"Client: hullctl {typeof(HullClient).Assembly.GetName().Version?.ToString(3)}");
    Console.WriteLine($"Server: {v.RuntimeName} {v.RuntimeVersion} (revision {info.Revision}), CRI {v.RuntimeApiVersion}, pid {info.Pid}");
}));
root.Subcommands.Add(version);

var info = new Command("info", "daemon identity, runtime conditions, handlers and cgroup driver");
info.Options.Add(formatOption);
info.SetAction(parse => Run(parse, async client =>
{
    var server = await client.ServerInfoAsync();
    var status = await client.StatusAsync();
    var config = await client.RuntimeConfigAsync();
    if (parse.GetValue(formatOption) == "json")
    {
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            server = JsonDocument.Parse(JsonFormatter.Default.Format(server)).RootElement,
            status = JsonDocument.Parse(JsonFormatter.Default.Format(status)).RootElement,
            runtimeConfig = JsonDocument.Parse(JsonFormatter.Default.Format(config)).RootElement,
        }, JsonOptions));
        return;
    }
    Console.WriteLine($"UUID:          {server.Uuid}");
    Console.WriteLine($"PID:           {server.Pid}");
    Console.WriteLine($"Version:       {server.Version}");
    Console.WriteLine($"Started:       {server.StartedAt}");
    Console.WriteLine($"Config:        {(server.ConfigPath.Length > 0 ? server.ConfigPath : "(embedded defaults)")}");
    Console.WriteLine($"Root:          {server.Root}");
    Console.WriteLine($"State:         {server.State}");
    Console.WriteLine($"Cgroup driver: {config.Linux?.CgroupDriver.ToString().ToLowerInvariant()}");
    Console.WriteLine();
    var conditions = new TextTable("CONDITION", "STATUS", "REASON", "MESSAGE");
    foreach (var c in status.Status.Conditions) conditions.Add(c.Type, c.Status.ToString().ToLowerInvariant(), c.Reason, c.Message);
    conditions.WriteTo(Console.Out);
    Console.WriteLine();
    var handlers = new TextTable("HANDLER", "RECURSIVE_READ_ONLY_MOUNTS", "USER_NAMESPACES");
    foreach (var h in status.RuntimeHandlers)
        handlers.Add(h.Name.Length == 0 ? "(default)" : h.Name, h.Features.RecursiveReadOnlyMounts.ToString().ToLowerInvariant(),
            h.Features.UserNamespaces.ToString().ToLowerInvariant());
    handlers.WriteTo(Console.Out);
    if (server.NodeCondition is { } node)
    {
        Console.WriteLine();
        Console.WriteLine($"Node condition: {(node.Status.Length > 0 ? $"{node.Status} ({node.Reason}) on node {node.Node}, published {node.PublishedAt}" : $"not published yet{(node.Node.Length > 0 ? $" on node {node.Node}" : "")}")}");
        Console.WriteLine($"  Publisher:    {node.Mode}{(node.Server.Length > 0 ? $", API server {node.Server}" : "")}");
        if (node.Error.Length > 0) Console.WriteLine($"  Error:        {node.Error} ({node.ErrorAt})");
    }
    if (server.RuntimeHandlers.Any(h => h.Details.Count > 0))
    {
        Console.WriteLine();
        var details = new TextTable("HANDLER", "SANDBOXER", "DETAILS");
        foreach (var h in server.RuntimeHandlers)
            details.Add(h.Name, h.Sandboxer, string.Join(", ", h.Details.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}")));
        details.WriteTo(Console.Out);
    }
}));
root.Subcommands.Add(info);

var deprecations = new Command("deprecations", "deprecated features this node has used");
var deprecationsList = new Command("list", "list deprecation warnings with their last occurrence");
deprecationsList.Aliases.Add("ls");
deprecationsList.Options.Add(formatOption);
deprecationsList.SetAction(parse => Run(parse, async client =>
{
    var response = await client.DeprecationsAsync();
    if (parse.GetValue(formatOption) == "json")
    {
        Console.WriteLine(JsonSerializer.Serialize(response.Warnings.Select(w => new
        {
            id = w.Id, message = w.Message, lastOccurrence = w.LastOccurrence, occurrences = w.Occurrences, publishedOnNode = w.PublishedOnNode,
        }), JsonOptions));
        return;
    }
    // ON NODE: part of the ContainerRuntimeHasNoDeprecations condition hulld last published on its Kubernetes Node.
    var table = new TextTable("ID", "LAST OCCURRENCE", "COUNT", "ON NODE", "MESSAGE");
    foreach (var w in response.Warnings) table.Add(w.Id, w.LastOccurrence, w.Occurrences.ToString(), w.PublishedOnNode ? "yes" : "no", w.Message);
    table.WriteTo(Console.Out);
}));
deprecations.Subcommands.Add(deprecationsList);
root.Subcommands.Add(deprecations);

var plugins = new Command("plugins", "daemon plugins");
var pluginsList = new Command("ls", "list plugins with their status");
pluginsList.Aliases.Add("list");
pluginsList.SetAction(parse => Run(parse, async client =>
{
    var response = await client.PluginsAsync();
    var table = new TextTable("TYPE", "ID", "STATUS", "EXPORTS", "ERROR");
    foreach (var p in response.Plugins)
        table.Add(p.Type, p.Id, p.Status, string.Join(",", p.Exports.Select(e => $"{e.Key}={e.Value}")), p.Error);
    table.WriteTo(Console.Out);
}));
plugins.Subcommands.Add(pluginsList);
root.Subcommands.Add(plugins);

var nri = new Command("nri", "NRI plugins connected to hulld");
var nriList = new Command("ls", "list the connected NRI plugins in event order");
nriList.Aliases.Add("list");
nriList.SetAction(parse => Run(parse, async client =>
{
    var response = await client.NriPluginsAsync();
    if (!response.Enabled)
    {
        Console.WriteLine("NRI is disabled ([plugins.'io.containerd.nri.v1.nri'] disable = true)");
        return;
    }
    var table = new TextTable("INDEX", "NAME", "PID", "STARTED BY", "EVENTS", "LAST ERROR");
    foreach (var p in response.Plugins)
        table.Add(p.Index, p.Name, p.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), p.PreInstalled ? "hulld" : "itself",
            string.Join(",", p.Events), p.LastError);
    table.WriteTo(Console.Out);
}));
nri.Subcommands.Add(nriList);
root.Subcommands.Add(nri);
root.Subcommands.Add(ImagesCommands.Create(addressOption));
root.Subcommands.Add(RunCommand.Create(addressOption));
foreach (var c in StreamingCommands.Create(addressOption)) root.Subcommands.Add(c);
root.Subcommands.Add(CdiCommands.Create());

return await root.Parse(args).InvokeAsync();

static JsonSerializerOptions JsonOptionsFactory() => new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

Task<int> Run(ParseResult parse, Func<HullClient, Task> action) => Cli.RunAsync(parse.GetValue(addressOption)!, async client =>
{
    await action(client);
    return 0;
});
