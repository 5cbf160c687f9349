using System.Diagnostics;
using Hull.Core;

namespace Hull.Sandbox;

/// <summary>Hull.Sandbox's activity source: sandboxer steps and CNI ADD/DEL.</summary>
public static class SandboxTelemetry
{
    public static readonly ActivitySource Source = new("Hull.Sandbox", HullInfo.Version);
}
