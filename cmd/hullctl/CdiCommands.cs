using System.CommandLine;
using System.Text.Json;
using Hull.Cdi;

namespace Hullctl;

/// <summary>
/// <c>hullctl cdi ls|check</c>: the node's CDI devices, read straight from the spec directories with the library hulld uses,
/// so the messages are the ones hulld logs and returns. Works without hulld.
/// </summary>
internal static class CdiCommands
{
    public static Command Create()
    {
        var cdi = new Command("cdi", "Container Device Interface devices and specs (reads the spec directories; hulld need not run)");
        cdi.Subcommands.Add(List());
        cdi.Subcommands.Add(Check());
        return cdi;
    }

    private static Option<string[]> SpecDirsOption() => new("--spec-dir")
    {
        Description = $"a CDI spec directory, later ones taking precedence (repeatable; default {string.Join(" ", CdiRegistryOptions.DefaultSpecDirectories)})",
        DefaultValueFactory = _ => [.. CdiRegistryOptions.DefaultSpecDirectories],
    };

    private static Command List()
    {
        var dirs = SpecDirsOption();
        var format = new Option<string>("--format", "-o") { Description = "table or json", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var command = new Command("ls", "list the devices the spec directories define, with their spec file") { dirs, format };
        command.Aliases.Add("list");
        command.SetAction(parse =>
        {
            var snapshot = CdiSnapshot.Load(parse.GetValue(dirs)!);
            if (parse.GetValue(format) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    devices = snapshot.Devices.Select(d => new { name = d.Name, specFile = d.SpecFile }),
                    errors = snapshot.Errors.Select(e => new { file = e.File, field = e.Field, reason = e.Reason }),
                }, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                return 0;
            }
            var table = new TextTable("DEVICE", "SPEC FILE");
            foreach (var d in snapshot.Devices) table.Add(d.Name, d.SpecFile);
            table.WriteTo(Console.Out);
            foreach (var e in snapshot.Errors) Console.Error.WriteLine($"warning: {e}");
            return 0;
        });
        return command;
    }

    private static Command Check()
    {
        var dirs = SpecDirsOption();
        var file = new Argument<string?>("file") { Description = "a spec file to check; without it, every spec in the spec directories", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("check", "validate CDI specs and show what each device would add to a container") { file, dirs };
        command.SetAction(parse => parse.GetValue(file) is { } path ? CheckFile(path) : CheckDirectories(parse.GetValue(dirs)!));
        return command;
    }

    private static int CheckFile(string path)
    {
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"hullctl: \"{path}\" does not exist");
            return 1;
        }
        var (spec, errors) = CdiSpecFile.Load(path);
        foreach (var e in errors) Console.Error.WriteLine($"error: {e}");
        if (spec is null)
        {
            Console.WriteLine($"{path}: invalid CDI spec ({errors.Count} {(errors.Count == 1 ? "problem" : "problems")})");
            return 1;
        }
        Console.WriteLine($"{path}: valid CDI spec {Summary(spec)}");
        if (!CdiSnapshot.IsSpecFile(path))
            Console.Error.WriteLine($"warning: \"{path}\" is not named *.json or *.yaml, so a spec directory would ignore it");
        return Preview(spec) ? 0 : 1;
    }

    private static int CheckDirectories(IReadOnlyList<string> dirs)
    {
        var snapshot = CdiSnapshot.Load(dirs);
        bool ok = snapshot.Errors.Count == 0;
        foreach (var spec in snapshot.Specs)
            Console.WriteLine($"{spec.Path}: valid CDI spec {Summary(spec)}");
        foreach (var e in snapshot.Errors) Console.Error.WriteLine($"error: {e}");
        foreach (var spec in snapshot.Specs) ok &= Preview(spec, snapshot);
        Console.WriteLine($"{snapshot.Specs.Count} valid {(snapshot.Specs.Count == 1 ? "spec" : "specs")}, {snapshot.Devices.Count} {(snapshot.Devices.Count == 1 ? "device" : "devices")}, {snapshot.Errors.Count} {(snapshot.Errors.Count == 1 ? "problem" : "problems")} in {string.Join(", ", dirs)}");
        return ok ? 0 : 1;
    }

    private static string Summary(CdiSpecFile spec) =>
        $"(cdiVersion {spec.Spec.CdiVersion}, needs at least {spec.MinimumVersion}; kind {spec.Spec.Kind}; {spec.Spec.Devices.Count} {(spec.Spec.Devices.Count == 1 ? "device" : "devices")})";

    // What each device of the spec adds to a container on this node; false when one cannot be injected here. With a
    // snapshot, devices another spec overrides are said to be so.
    private static bool Preview(CdiSpecFile spec, CdiSnapshot? snapshot = null)
    {
        bool ok = true;
        foreach (var device in spec.Spec.Devices)
        {
            string name = spec.QualifiedName(device.Name);
            Console.WriteLine();
            if (snapshot is not null && snapshot.Devices.FirstOrDefault(d => d.Name == name) is { } winner && winner.SpecFile != spec.Path)
            {
                Console.WriteLine($"{name}: defined again in \"{winner.SpecFile}\", which takes precedence");
                continue;
            }
            try
            {
                Console.WriteLine($"{name} adds:");
                foreach (var line in spec.Preview(device.Name).Describe().Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    Console.WriteLine($"  {line}");
            }
            catch (CdiException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                ok = false;
            }
        }
        return ok;
    }
}
