using System.CommandLine;
using Hull.Config;

namespace Hulld;

/// <summary><c>hulld config default|dump|migrate|check</c>; the work is done by <see cref="ConfigCommandsLogic"/>.</summary>
internal static class ConfigCommands
{
    public static void AddTo(RootCommand root, Option<string?> configOption, Option<bool> strictOption)
    {
        // The daemon's options also work after the subcommand: `hulld config check --config FILE`.
        configOption.Recursive = true;
        strictOption.Recursive = true;
        var overrideOptions = root.Options.OfType<Option<string?>>()
            .Where(o => o.Name is "--root" or "--state" or "--address" or "--log-level")
            .ToDictionary(o => o.Name);
        foreach (var option in overrideOptions.Values)
        {
            option.Recursive = true;
        }

        var config = new Command("config", "print and check configurations");

        var defaults = new Command("default", "print the default configuration as a version 3 file");
        defaults.SetAction(_ => Emit(ConfigCommandsLogic.Default()));

        var dump = new Command("dump", "print the configuration hulld would run with (after migration and command-line overrides)");
        dump.SetAction(parse =>
        {
            string? Override(string name) => overrideOptions.TryGetValue(name, out var option) ? parse.GetValue(option) : null;
            var overrides = new ConfigOverrides(Override("--root"), Override("--state"), Override("--address"), Override("--log-level"));
            return Emit(ConfigCommandsLogic.Dump(parse.GetValue(configOption), parse.GetValue(strictOption), overrides));
        });

        var migrate = new Command("migrate", "print a version 1 or 2 config file in version 3 form (the file is not changed)");
        migrate.SetAction(parse => Emit(ConfigCommandsLogic.Migrate(parse.GetValue(configOption))));

        var check = new Command("check", "check a config file; exit code 1 on errors");
        check.SetAction(parse => Emit(ConfigCommandsLogic.Check(parse.GetValue(configOption), parse.GetValue(strictOption))));

        config.Subcommands.Add(defaults);
        config.Subcommands.Add(dump);
        config.Subcommands.Add(migrate);
        config.Subcommands.Add(check);
        root.Subcommands.Add(config);
    }

    private static int Emit(ConfigCommandOutput output)
    {
        Console.Error.Write(output.Stderr);
        Console.Out.Write(output.Stdout);
        return output.ExitCode;
    }
}
