using System.CommandLine;
using Hull.Config;

namespace Hulld;

/// <summary><c>hulld config default|dump|migrate|check</c>.</summary>
internal static class ConfigCommands
{
    public static void AddTo(RootCommand root, Option<string?> configOption, Option<bool> strictOption)
    {
        var config = new Command("config", "print and check configurations");
        var check = new Command("check", "check a config file; exit code 1 on errors");
        check.SetAction(parse =>
        {
            try
            {
                var result = Daemon.LoadConfig(parse.GetValue(configOption), parse.GetValue(strictOption));
                foreach (var d in result.Diagnostics) Console.Error.WriteLine($"{d.Severity.ToString().ToLowerInvariant()}: {d}");
                Console.WriteLine(result.HasErrors ? "config has errors" : $"config OK ({result.SourcePath ?? "embedded defaults"})");
                return result.HasErrors ? 1 : 0;
            }
            catch (ConfigException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        config.Subcommands.Add(check);
        root.Subcommands.Add(config);
    }
}
