using System.Text.Json;
using Hull.Api.Cri;
using Grpc.Core;
using Hull.Images;
using Hull.Images.Registry;

namespace Hull.Cri;

/// <summary>CRI ImageService: translates CRI messages to <see cref="ImageManager"/> and back.</summary>
public sealed class ImageService(ImageManager images) : Api.Cri.ImageService.ImageServiceBase
{
    public override async Task<ListImagesResponse> ListImages(ListImagesRequest request, ServerCallContext context)
    {
        var response = new ListImagesResponse();
        string? filter = request.Filter?.Image?.Image;
        if (!string.IsNullOrEmpty(filter))
        {
            if (await images.FindAsync(filter, context.CancellationToken).ConfigureAwait(false) is { } one)
                response.Images.Add(await ToCriAsync(one, context.CancellationToken).ConfigureAwait(false));
            return response;
        }
        foreach (var image in await images.ListAsync(context.CancellationToken).ConfigureAwait(false))
            response.Images.Add(await ToCriAsync(image, context.CancellationToken).ConfigureAwait(false));
        return response;
    }

    public override async Task<ImageStatusResponse> ImageStatus(ImageStatusRequest request, ServerCallContext context)
    {
        string spec = RequireSpec(request.Image, "ImageStatus");
        var response = new ImageStatusResponse();
        // An absent image is not an error for ImageStatus: the kubelet checks presence this way.
        if (await images.FindAsync(spec, context.CancellationToken).ConfigureAwait(false) is not { } image) return response;
        response.Image = await ToCriAsync(image, context.CancellationToken).ConfigureAwait(false);
        if (request.Verbose)
        {
            var config = await images.ConfigAsync(image, context.CancellationToken).ConfigureAwait(false);
            response.Info.Add("info", JsonSerializer.Serialize(new
            {
                chainID = image.ChainId,
                manifestDigest = image.ManifestDigest,
                snapshotter = image.Snapshotter,
                imageSpec = config,
            }));
        }
        return response;
    }

    public override async Task<PullImageResponse> PullImage(PullImageRequest request, ServerCallContext context)
    {
        string spec = RequireSpec(request.Image, "PullImage");
        var auth = request.Auth;
        var credentials = auth is null ? null : RegistryCredentials.FromAuthConfig(
            auth.Username, auth.Password, auth.Auth, auth.ServerAddress, auth.IdentityToken, auth.RegistryToken);
        var record = await images.PullAsync(spec, credentials, null, context.CancellationToken).ConfigureAwait(false);
        return new PullImageResponse { ImageRef = record.Id };
    }

    public override async Task<RemoveImageResponse> RemoveImage(RemoveImageRequest request, ServerCallContext context)
    {
        await images.RemoveAsync(RequireSpec(request.Image, "RemoveImage"), context.CancellationToken).ConfigureAwait(false);
        return new RemoveImageResponse();
    }

    public override async Task<ImageFsInfoResponse> ImageFsInfo(ImageFsInfoRequest request, ServerCallContext context)
    {
        var usage = await images.SnapshotUsageAsync(context.CancellationToken).ConfigureAwait(false);
        var fs = new FilesystemUsage
        {
            Timestamp = usage.Timestamp.ToUnixTimeMilliseconds() * 1_000_000,
            FsId = new FilesystemIdentifier { Mountpoint = usage.Mountpoint },
            UsedBytes = new UInt64Value { Value = (ulong)usage.UsedBytes },
            InodesUsed = new UInt64Value { Value = (ulong)usage.InodesUsed },
        };
        // Images and containers' writable layers share the snapshotter's filesystem, as with containerd.
        return new ImageFsInfoResponse { ImageFilesystems = { fs }, ContainerFilesystems = { fs.Clone() } };
    }

    private async Task<Image> ToCriAsync(ImageSummary image, CancellationToken cancellationToken)
    {
        var cri = new Image
        {
            Id = image.Id,
            Size = (ulong)image.Size,
            Pinned = image.Pinned,
            Spec = new ImageSpec { Image = image.Id },
        };
        cri.RepoTags.AddRange(image.RepoTags);
        cri.RepoDigests.AddRange(image.RepoDigests);
        var user = (await images.ConfigAsync(image, cancellationToken).ConfigureAwait(false)).Config.User;
        SetUser(cri, user);
        return cri;
    }

    /// <summary>CRI reports a numeric user as uid and a named one as username (the part before ':').</summary>
    private static void SetUser(Image image, string? user)
    {
        if (string.IsNullOrEmpty(user)) return;
        string name = user.Split(':')[0];
        if (long.TryParse(name, out long uid)) image.Uid = new Int64Value { Value = uid };
        else image.Username = name;
    }

    private static string RequireSpec(ImageSpec? spec, string method) =>
        string.IsNullOrWhiteSpace(spec?.Image)
            ? throw new Hull.Core.HullException(Hull.Core.ErrorKind.InvalidArgument, $"{method}: the image spec names no image")
            : spec.Image;
}
