using System.Text.RegularExpressions;

namespace Hull.Tests.Support;

/// <summary>
/// The upstream NRI plugins (containerd/nri v0.12.2, unpacked from ../shared/tools) as the NRI unit tests and the e2e
/// suite use them: where the binaries are, how a pre-installed "NN-name" plugin is written, and what the logger
/// plugin logged. Shared by both test projects as a linked source file (test/Shared).
/// </summary>
public static partial class UpstreamNriPlugins
{
    public static string Directory { get; } =
        Environment.GetEnvironmentVariable("HULL_NRI_PLUGINS") ?? "/usr/local/lib/hull-test-tools/nri-plugins/v0.12.2";

    public static string Path(string plugin) => System.IO.Path.Combine(Directory, plugin);

    /// <summary>Writes plugin "NN-name" into <paramref name="pluginPath"/>: a script running the upstream binary with <paramref name="arguments"/>.</summary>
    public static void Install(string pluginPath, string indexedName, string binary, params string[] arguments)
    {
        System.IO.Directory.CreateDirectory(pluginPath);
        var script = System.IO.Path.Combine(pluginPath, indexedName);
        var quoted = string.Join(' ', arguments.Select(a => $"'{a}'"));
        File.WriteAllText(script, $"#!/bin/sh\nexec '{Path(binary)}' {quoted}\n");
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
    }

    [GeneratedRegex(@"(\w+): pods?:""?$")]
    private static partial Regex DumpHeader();

    /// <summary>The event names the logger plugin dumped to <paramref name="logFile"/>, once there are at least <paramref name="atLeast"/> (or 10 s passed).</summary>
    public static async Task<string[]> LoggedEventsAsync(string logFile, int atLeast)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var events = File.Exists(logFile)
                ? File.ReadAllLines(logFile).Select(l => DumpHeader().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToArray()
                : [];
            if (events.Length >= atLeast || DateTime.UtcNow > deadline) return events;
            await Task.Delay(20);
        }
    }
}
