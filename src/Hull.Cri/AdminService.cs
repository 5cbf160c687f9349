using Hull.Api.Admin;
using Hull.Config;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Core.Plugins;
using Hull.Grpc.Server;

namespace Hull.Cri;

/// <summary>Identity of this daemon run.</summary>
public sealed record DaemonIdentity(string Uuid, int Pid, DateTimeOffset StartedAt, string ConfigPath);

/// <summary>Hull's admin API: introspection of the daemon, its plugins and deprecation warnings.</summary>
public sealed class AdminService(HullConfig config, DaemonIdentity identity, PluginRegistry plugins, DeprecationRegistry deprecations)
{
    public Task<ServerInfoResponse> ServerInfo(ServerInfoRequest request, ServerCallContext context)
    {
        var response = new ServerInfoResponse
        {
            Uuid = identity.Uuid,
            Pid = identity.Pid,
            Version = HullInfo.Version,
            Revision = HullInfo.Revision,
            StartedAt = identity.StartedAt.ToString("O"),
            ConfigPath = identity.ConfigPath,
            Root = config.Root,
            State = config.State,
        };
        response.Deprecations.AddRange(ToProto(deprecations.Snapshot()));
        return Task.FromResult(response);
    }

    public Task<PluginsResponse> Plugins(PluginsRequest request, ServerCallContext context)
    {
        var response = new PluginsResponse();
        foreach (var p in plugins.Snapshot().Where(p => p.Type.StartsWith(request.TypePrefix, StringComparison.Ordinal)))
        {
            var plugin = new Plugin { Type = p.Type, Id = p.Id, Status = p.Status.ToString().ToLowerInvariant(), Error = p.Error };
            plugin.Requires.AddRange(p.Requires);
            foreach (var (key, value) in p.Exports) plugin.Exports[key] = value;
            response.Plugins.Add(plugin);
        }
        return Task.FromResult(response);
    }

    public Task<DeprecationsResponse> Deprecations(DeprecationsRequest request, ServerCallContext context)
    {
        var response = new DeprecationsResponse();
        response.Warnings.AddRange(ToProto(deprecations.Snapshot()));
        return Task.FromResult(response);
    }

    private static IEnumerable<Hull.Api.Admin.DeprecationWarning> ToProto(IEnumerable<Core.Deprecations.DeprecationWarning> warnings) =>
        warnings.Select(w => new Hull.Api.Admin.DeprecationWarning
        {
            Id = w.Id,
            Message = w.Message,
            LastOccurrence = w.LastOccurrence.ToString("O"),
            Occurrences = w.Occurrences,
        });
}
