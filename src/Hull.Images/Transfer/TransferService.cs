using Hull.Core;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Store;

namespace Hull.Images.Transfer;

/// <summary>
/// The local transfer service (containerd's <c>io.containerd.transfer.v1.local</c>): one entry point
/// for the image flows, over the puller, the pusher, the OCI archive reader and writer and the image
/// store's names.
/// </summary>
public sealed class TransferService(ImageManager images, ImagePusher pusher, OciArchiveImporter importer, OciArchiveExporter exporter,
    ImportOptions? importDefaults = null) : ITransferService
{
    private readonly ImportOptions _importDefaults = importDefaults ?? new ImportOptions();

    public Task<ImageRecord> PullAsync(string reference, RegistryCredentials? credentials, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken)
    {
        if (progress is null) return images.PullAsync(reference, credentials, null, cancellationToken);
        // Layers report from several threads (byte counts through the thread pool): keep each one moving forward.
        var ordered = new ForwardOnlyProgress(progress);
        return images.PullAsync(reference, credentials, new SyncProgress<PullProgress>(p => ordered.Report(TransferProgress.FromPull(p))),
            cancellationToken);
    }

    public async Task<PushResult> PushAsync(string image, string? target, RegistryCredentials? credentials, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken)
    {
        var record = await RequireAsync(image, cancellationToken).ConfigureAwait(false);
        var destination = ImageReference.ParseDockerRef(string.IsNullOrEmpty(target) ? record.Name : target);
        return await pusher.PushAsync(record, destination, credentials, progress, cancellationToken).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<ImageRecord>> ImportAsync(Stream archive, ImportOptions options, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken) =>
        importer.ImportAsync(archive, options with
        {
            PinnedNames = options.PinnedNames.Count > 0 ? options.PinnedNames : _importDefaults.PinnedNames,
        }, progress, cancellationToken);

    public async Task<ExportResult> ExportAsync(IReadOnlyList<string> images, Stream destination, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken)
    {
        if (images.Count == 0) throw new HullException(ErrorKind.InvalidArgument, "export: no image given");
        var records = new List<ImageRecord>();
        foreach (var spec in images) records.Add(await RequireAsync(spec, cancellationToken).ConfigureAwait(false));
        return await exporter.ExportAsync(records, destination, progress, cancellationToken).ConfigureAwait(false);
    }

    public Task<ImageRecord> TagAsync(string source, string target, CancellationToken cancellationToken) =>
        images.TagAsync(source, target, cancellationToken);

    private async Task<ImageRecord> RequireAsync(string spec, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new HullException(ErrorKind.InvalidArgument, "no image given");
        return await images.FindRecordAsync(spec, cancellationToken).ConfigureAwait(false)
            ?? throw new HullException(ErrorKind.NotFound, $"image \"{spec}\" not found");
    }
}
