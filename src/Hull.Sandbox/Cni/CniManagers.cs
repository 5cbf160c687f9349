using System.Collections.Concurrent;
using Hull.Runtime.Handlers;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.Cni;

/// <summary>One CNI manager per distinct (conf dir, max conf num): handlers that share the global CNI settings share one.</summary>
public sealed class CniManagers(CniOptions global, ILoggerFactory loggers)
{
    private readonly ConcurrentDictionary<(string ConfDir, int MaxConfNum), CniManager> _managers = new();

    /// <summary>The manager of the global <c>cni</c> settings (the NetworkReady condition reads it).</summary>
    public CniManager Default => For(global.ConfDir, global.MaxConfNum);

    public CniManager For(RuntimeHandler handler) => For(handler.CniConfDir, handler.CniMaxConfNum);

    private CniManager For(string confDir, int maxConfNum) => _managers.GetOrAdd((confDir, maxConfNum),
        key => new CniManager(global with { ConfDir = key.ConfDir, MaxConfNum = key.MaxConfNum }, loggers.CreateLogger<CniManager>()));
}
