using System.Reflection;

namespace Hull.Core;

/// <summary>The daemon's name and version, in one place.</summary>
public static class HullInfo
{
    public const string RuntimeName = "hull";
    public const string CriApiVersion = "v1";

    public static string Version { get; } =
        typeof(HullInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static string Revision { get; } =
        typeof(HullInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+') is [_, var rev] ? rev : "unknown";
}
