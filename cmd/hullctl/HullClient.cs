using System.Runtime.CompilerServices;
using Grpc.Core;
using Grpc.Net.Client;
using Hull.Api.Admin;
using Hull.Api.Cri;
using Hull.Grpc;
using Hull.Grpc.Client;

namespace Hullctl;

/// <summary>hulld's CRI and admin services through their generated client stubs, on Grpc.Net.Client over the unix socket.</summary>
internal sealed class HullClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public HullClient(string socket)
    {
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = UnixSocketHttpHandler.Create(socket),
            MaxReceiveMessageSize = GrpcProtocol.DefaultMaxMessageSize,
        });
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
        Images = new ImageService.ImageServiceClient(_channel);
        Admin = new Admin.AdminClient(_channel);
    }

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public RuntimeService.RuntimeServiceClient Runtime { get; }
    public ImageService.ImageServiceClient Images { get; }
    public Admin.AdminClient Admin { get; }

    /// <summary>The deadline of a call that may take <paramref name="timeout"/>.</summary>
    public static DateTime In(TimeSpan timeout) => DateTime.UtcNow + timeout;

    public async Task<VersionResponse> VersionAsync() => await Runtime.VersionAsync(new VersionRequest { Version = "v1" }, deadline: In(Timeout));
    public async Task<StatusResponse> StatusAsync() => await Runtime.StatusAsync(new StatusRequest { Verbose = true }, deadline: In(Timeout));
    public async Task<RuntimeConfigResponse> RuntimeConfigAsync() => await Runtime.RuntimeConfigAsync(new RuntimeConfigRequest(), deadline: In(Timeout));
    public async Task<ServerInfoResponse> ServerInfoAsync() => await Admin.ServerInfoAsync(new ServerInfoRequest(), deadline: In(Timeout));
    public async Task<PluginsResponse> PluginsAsync() => await Admin.PluginsAsync(new PluginsRequest(), deadline: In(Timeout));
    public async Task<NriPluginsResponse> NriPluginsAsync() => await Admin.NriPluginsAsync(new NriPluginsRequest(), deadline: In(Timeout));
    public async Task<DeprecationsResponse> DeprecationsAsync() => await Admin.DeprecationsAsync(new DeprecationsRequest(), deadline: In(Timeout));

    public async Task<ListImagesResponse> ListImagesAsync(CancellationToken ct) =>
        await Images.ListImagesAsync(new ListImagesRequest(), deadline: In(Timeout), cancellationToken: ct);
    public async Task<ImageStatusResponse> ImageStatusAsync(string image, CancellationToken ct) =>
        await Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } }, deadline: In(Timeout), cancellationToken: ct);
    public async Task<RemoveImageResponse> RemoveImageAsync(string image, CancellationToken ct) =>
        await Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = image } }, deadline: In(Timeout), cancellationToken: ct);
    public async Task<TagImageResponse> TagImageAsync(string source, string target, CancellationToken ct) =>
        await Admin.TagImageAsync(new TagImageRequest { Source = source, Target = target }, deadline: In(Timeout), cancellationToken: ct);

    // Transfers take as long as the image is large: no deadline, Ctrl+C cancels them.
    public IAsyncEnumerable<TransferProgress> PullImageAsync(AdminPullRequest request, CancellationToken ct) =>
        ReadAllAsync(Admin.PullImage(request, cancellationToken: ct), ct);
    public IAsyncEnumerable<TransferProgress> PushImageAsync(AdminPushRequest request, CancellationToken ct) =>
        ReadAllAsync(Admin.PushImage(request, cancellationToken: ct), ct);
    public async Task<ImportImageResponse> ImportImageAsync(ImportImageRequest request, CancellationToken ct) =>
        await Admin.ImportImageAsync(request, cancellationToken: ct);
    public async Task<ExportImageResponse> ExportImageAsync(ExportImageRequest request, CancellationToken ct) =>
        await Admin.ExportImageAsync(request, cancellationToken: ct);

    /// <summary>Pulls through CRI when the node does not have the image yet, as the kubelet's IfNotPresent policy does.</summary>
    public async Task PullIfMissingAsync(string image, CancellationToken ct)
    {
        if ((await ImageStatusAsync(image, ct)).Image is not null) return;
        await Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } }, deadline: In(TimeSpan.FromMinutes(10)),
            cancellationToken: ct);
    }

    private static async IAsyncEnumerable<T> ReadAllAsync<T>(AsyncServerStreamingCall<T> call, [EnumeratorCancellation] CancellationToken ct)
    {
        using (call)
            await foreach (var message in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
                yield return message;
    }

    public void Dispose() => _channel.Dispose();
}
