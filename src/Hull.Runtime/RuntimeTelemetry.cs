using System.Diagnostics;
using Hull.Core;

namespace Hull.Runtime;

/// <summary>Hull.Runtime's activity source: task steps (conmon + runc run; conmon + runc create, runc start).</summary>
public static class RuntimeTelemetry
{
    public static readonly ActivitySource Source = new("Hull.Runtime", HullInfo.Version);
}
