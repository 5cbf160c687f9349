using Google.Protobuf;
using Google.Protobuf.Reflection;
using Hull.Api.Admin;
using Hull.Api.Cri;
using Hull.Grpc.Client;

namespace Hullctl;

/// <summary>Typed calls to hulld's CRI and admin services, addressed by their generated descriptors.</summary>
internal sealed class HullClient(string socket) : IDisposable
{
    private static readonly ServiceDescriptor Runtime = ApiReflection.Descriptor.Services.Single(s => s.Name == "RuntimeService");
    private static readonly ServiceDescriptor Admin = AdminReflection.Descriptor.Services.Single(s => s.Name == "Admin");
    private readonly GrpcChannel _channel = GrpcChannel.ForUnixSocket(socket);

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public Task<VersionResponse> VersionAsync() => Call<VersionResponse>(Runtime, "Version", new VersionRequest { Version = "v1" });
    public Task<StatusResponse> StatusAsync() => Call<StatusResponse>(Runtime, "Status", new StatusRequest { Verbose = true });
    public Task<RuntimeConfigResponse> RuntimeConfigAsync() => Call<RuntimeConfigResponse>(Runtime, "RuntimeConfig", new RuntimeConfigRequest());
    public Task<ServerInfoResponse> ServerInfoAsync() => Call<ServerInfoResponse>(Admin, "ServerInfo", new ServerInfoRequest());
    public Task<PluginsResponse> PluginsAsync() => Call<PluginsResponse>(Admin, "Plugins", new PluginsRequest());
    public Task<DeprecationsResponse> DeprecationsAsync() => Call<DeprecationsResponse>(Admin, "Deprecations", new DeprecationsRequest());

    private Task<T> Call<T>(ServiceDescriptor service, string method, IMessage request) where T : IMessage<T>, new() =>
        _channel.UnaryAsync<T>(service.FindMethodByName(method), request, Timeout);

    public void Dispose() => _channel.Dispose();
}
