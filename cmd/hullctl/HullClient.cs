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
    private static readonly ServiceDescriptor Image = ApiReflection.Descriptor.Services.Single(s => s.Name == "ImageService");
    private static readonly ServiceDescriptor Admin = AdminReflection.Descriptor.Services.Single(s => s.Name == "Admin");
    private readonly GrpcChannel _channel = GrpcChannel.ForUnixSocket(socket);

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public Task<VersionResponse> VersionAsync() => Call<VersionResponse>(Runtime, "Version", new VersionRequest { Version = "v1" });
    public Task<StatusResponse> StatusAsync() => Call<StatusResponse>(Runtime, "Status", new StatusRequest { Verbose = true });
    public Task<RuntimeConfigResponse> RuntimeConfigAsync() => Call<RuntimeConfigResponse>(Runtime, "RuntimeConfig", new RuntimeConfigRequest());
    public Task<ServerInfoResponse> ServerInfoAsync() => Call<ServerInfoResponse>(Admin, "ServerInfo", new ServerInfoRequest());
    public Task<PluginsResponse> PluginsAsync() => Call<PluginsResponse>(Admin, "Plugins", new PluginsRequest());

    public Task<NriPluginsResponse> NriPluginsAsync() => Call<NriPluginsResponse>(Admin, "NriPlugins", new NriPluginsRequest());
    public Task<DeprecationsResponse> DeprecationsAsync() => Call<DeprecationsResponse>(Admin, "Deprecations", new DeprecationsRequest());

    public Task<ListImagesResponse> ListImagesAsync(CancellationToken ct) =>
        Call<ListImagesResponse>(Image, "ListImages", new ListImagesRequest(), ct);
    public Task<ImageStatusResponse> ImageStatusAsync(string image, CancellationToken ct) =>
        Call<ImageStatusResponse>(Image, "ImageStatus", new ImageStatusRequest { Image = new ImageSpec { Image = image } }, ct);
    public Task<RemoveImageResponse> RemoveImageAsync(string image, CancellationToken ct) =>
        Call<RemoveImageResponse>(Image, "RemoveImage", new RemoveImageRequest { Image = new ImageSpec { Image = image } }, ct);
    public Task<TagImageResponse> TagImageAsync(string source, string target, CancellationToken ct) =>
        Call<TagImageResponse>(Admin, "TagImage", new TagImageRequest { Source = source, Target = target }, ct);

    // Transfers take as long as the image is large: no deadline, Ctrl+C cancels them.
    public IAsyncEnumerable<TransferProgress> PullImageAsync(AdminPullRequest request, CancellationToken ct) =>
        _channel.ServerStreamingAsync<TransferProgress>(Admin.FindMethodByName("PullImage"), request, null, ct);
    public IAsyncEnumerable<TransferProgress> PushImageAsync(AdminPushRequest request, CancellationToken ct) =>
        _channel.ServerStreamingAsync<TransferProgress>(Admin.FindMethodByName("PushImage"), request, null, ct);
    public Task<ImportImageResponse> ImportImageAsync(ImportImageRequest request, CancellationToken ct) =>
        _channel.UnaryAsync<ImportImageResponse>(Admin.FindMethodByName("ImportImage"), request, null, ct);
    public Task<ExportImageResponse> ExportImageAsync(ExportImageRequest request, CancellationToken ct) =>
        _channel.UnaryAsync<ExportImageResponse>(Admin.FindMethodByName("ExportImage"), request, null, ct);

    /// <summary>Pulls through CRI when the node does not have the image yet, as the kubelet's IfNotPresent policy does.</summary>
    public async Task PullIfMissingAsync(string image, CancellationToken ct)
    {
        if ((await ImageStatusAsync(image, ct)).Image is not null) return;
        await _channel.UnaryAsync<PullImageResponse>(Image.FindMethodByName("PullImage"),
            new PullImageRequest { Image = new ImageSpec { Image = image } }, TimeSpan.FromMinutes(10), ct);
    }

    /// <summary>Any CRI RuntimeService call, by RPC name.</summary>
    public Task<T> RuntimeAsync<T>(string method, IMessage request, TimeSpan timeout, CancellationToken ct) where T : IMessage<T>, new() =>
        _channel.UnaryAsync<T>(Runtime.FindMethodByName(method), request, timeout, ct);

    private Task<T> Call<T>(ServiceDescriptor service, string method, IMessage request, CancellationToken ct) where T : IMessage<T>, new() =>
        _channel.UnaryAsync<T>(service.FindMethodByName(method), request, Timeout, ct);

    private Task<T> Call<T>(ServiceDescriptor service, string method, IMessage request) where T : IMessage<T>, new() =>
        _channel.UnaryAsync<T>(service.FindMethodByName(method), request, Timeout);

    public void Dispose() => _channel.Dispose();
}
