using Hull.Api.Admin;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Core.Plugins;
using Grpc.Core;
using Hull.Images.Registry;
using Hull.Images.Transfer;
using DomainProgress = Hull.Images.Transfer.TransferProgress;
using ProtoProgress = Hull.Api.Admin.TransferProgress;

namespace Hull.Cri;

/// <summary>Identity of this daemon run.</summary>
public sealed record DaemonIdentity(string Uuid, int Pid, DateTimeOffset StartedAt, string ConfigPath);

/// <summary>
/// Hull's admin API: introspection of the daemon, its plugins and deprecation warnings, and the image
/// transfers hullctl runs (with per-blob progress, which CRI's PullImage cannot report).
/// </summary>
public sealed class AdminService(CriOptions options, DaemonIdentity identity, PluginRegistry plugins, DeprecationRegistry deprecations,
    ITransferService? transfer = null, Hull.Nri.NriHost? nri = null, IDeprecationPublisher? publisher = null,
    Pods.PodManager? pods = null) : Admin.AdminBase
{
    public override Task<NriPluginsResponse> NriPlugins(NriPluginsRequest request, ServerCallContext context)
    {
        var response = new NriPluginsResponse { Enabled = nri is { Enabled: true } };
        foreach (var p in nri?.ListPlugins() ?? [])
        {
            var plugin = new NriPlugin { Name = p.Name, Index = p.Index, PreInstalled = p.PreInstalled, Pid = p.Pid, LastError = p.LastError ?? "" };
            plugin.Events.AddRange(p.Events);
            response.Plugins.Add(plugin);
        }
        return Task.FromResult(response);
    }

    public override Task<ServerInfoResponse> ServerInfo(ServerInfoRequest request, ServerCallContext context)
    {
        var response = new ServerInfoResponse
        {
            Uuid = identity.Uuid,
            Pid = identity.Pid,
            Version = HullInfo.Version,
            Revision = HullInfo.Revision,
            StartedAt = identity.StartedAt.ToString("O"),
            ConfigPath = identity.ConfigPath,
            Root = options.Root,
            State = options.State,
        };
        response.Deprecations.AddRange(ToProto(deprecations.Snapshot()));
        if (publisher?.Status is { } published) response.NodeCondition = ToProto(published);
        foreach (var handler in pods?.Handlers.All ?? [])
        {
            var info = new RuntimeHandlerInfo { Name = handler.Name, Sandboxer = handler.Sandboxer };
            foreach (var (key, value) in pods!.Describe(handler)) info.Details[key] = value;
            response.RuntimeHandlers.Add(info);
        }
        return Task.FromResult(response);
    }

    public override Task<PluginsResponse> Plugins(PluginsRequest request, ServerCallContext context)
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

    public override Task<DeprecationsResponse> Deprecations(DeprecationsRequest request, ServerCallContext context)
    {
        var response = new DeprecationsResponse();
        response.Warnings.AddRange(ToProto(deprecations.Snapshot()));
        return Task.FromResult(response);
    }

    public override async Task PullImage(AdminPullRequest request, IServerStreamWriter<ProtoProgress> responseStream, ServerCallContext context)
    {
        var service = Transfer();
        string image = Require(request.Image, "PullImage", "image");
        var credentials = Credentials(request.Credentials);
        var pump = new ProgressPump();
        var record = await pump.RunAsync(responseStream,
            () => service.PullAsync(image, credentials, pump, context.CancellationToken)).ConfigureAwait(false);
        await responseStream.WriteAsync(new ProtoProgress
        {
            Image = record.Name, Digest = record.Target.Digest, Kind = "image", Phase = DomainProgress.Name(TransferPhase.Done),
            Bytes = record.Size, Total = record.Size, ImageId = record.Id,
        }).ConfigureAwait(false);
    }

    public override async Task PushImage(AdminPushRequest request, IServerStreamWriter<ProtoProgress> responseStream, ServerCallContext context)
    {
        var service = Transfer();
        string image = Require(request.Image, "PushImage", "image");
        var credentials = Credentials(request.Credentials);
        var pump = new ProgressPump();
        var result = await pump.RunAsync(responseStream,
            () => service.PushAsync(image, request.Target, credentials, pump, context.CancellationToken)).ConfigureAwait(false);
        await responseStream.WriteAsync(new ProtoProgress
        {
            Image = result.Reference, Digest = result.Pushed.Digest, Kind = "image", Phase = DomainProgress.Name(TransferPhase.Done),
            ImageId = result.ImageId, PushedDigest = result.Pushed.Digest,
        }).ConfigureAwait(false);
    }

    public override async Task<ImportImageResponse> ImportImage(ImportImageRequest request, ServerCallContext context)
    {
        var service = Transfer();
        string path = AbsolutePath(request.Path, "ImportImage");
        FileStream archive;
        try
        {
            archive = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new HullException(ErrorKind.NotFound, $"archive \"{path}\" not found");
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot read archive \"{path}\": {e.Message}");
        }
        await using (archive)
        {
            var records = await service.ImportAsync(archive, new ImportOptions { Name = request.Name.Length > 0 ? request.Name : null }, null,
                context.CancellationToken).ConfigureAwait(false);
            var response = new ImportImageResponse();
            response.Images.AddRange(records.Select(r => new ImportedImage { Name = r.Name, Id = r.Id }));
            return response;
        }
    }

    public override async Task<ExportImageResponse> ExportImage(ExportImageRequest request, ServerCallContext context)
    {
        var service = Transfer();
        string path = AbsolutePath(request.Path, "ExportImage");
        if (request.Images.Count == 0 || request.Images.Any(string.IsNullOrWhiteSpace))
            throw new HullException(ErrorKind.InvalidArgument, "ExportImage: no image given");
        string directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
            throw new HullException(ErrorKind.NotFound, $"cannot write \"{path}\": directory \"{directory}\" does not exist");
        // Written next to the destination and renamed over it: a failed export leaves no half-written archive.
        try
        {
            ExportResult? result = null;
            await Hull.Linux.AtomicFile.WriteAsync(path, async (output, ct) =>
                    result = await service.ExportAsync(request.Images.ToArray(), output, null, ct).ConfigureAwait(false),
                Hull.Linux.AtomicFile.WorldReadable, context.CancellationToken).ConfigureAwait(false);
            return new ExportImageResponse { Size = new FileInfo(path).Length, Blobs = result!.Blobs };
        }
        catch (UnauthorizedAccessException e)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot write \"{path}\": {e.Message}");
        }
    }

    public override async Task<TagImageResponse> TagImage(TagImageRequest request, ServerCallContext context)
    {
        var service = Transfer();
        var record = await service.TagAsync(Require(request.Source, "TagImage", "source"), Require(request.Target, "TagImage", "target"),
            context.CancellationToken).ConfigureAwait(false);
        return new TagImageResponse { Name = record.Name, Id = record.Id };
    }

    private ITransferService Transfer() =>
        transfer ?? throw new RpcException(new Status(StatusCode.Unimplemented, "this hulld serves no image transfer service"));

    private static string Require(string value, string method, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw new HullException(ErrorKind.InvalidArgument, $"{method}: no {field} given") : value;

    private static string AbsolutePath(string path, string method)
    {
        Require(path, method, "path");
        if (!Path.IsPathFullyQualified(path))
            throw new HullException(ErrorKind.InvalidArgument, $"{method}: path \"{path}\" is not absolute (hulld resolves it on the node, not in your directory)");
        return Path.GetFullPath(path);
    }

    private static RegistryCredentials? Credentials(RegistryAuth? auth) =>
        auth is null || (auth.Username.Length == 0 && auth.Password.Length == 0) ? null : new RegistryCredentials(auth.Username, auth.Password);

    /// <summary>
    /// Carries a transfer's progress (reported synchronously on the transfer's threads) to the response
    /// stream, one writer at a time. Byte counts of one blob in one phase are coalesced, so a fast download
    /// sends a message every ~100 ms, not one per read; every phase change is kept.
    /// </summary>
    private sealed class ProgressPump : IProgress<DomainProgress>
    {
        private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
        private readonly Lock _lock = new();
        private readonly List<ProtoProgress> _queue = [];
        private readonly Dictionary<(string, string), int> _pending = [];

        public void Report(DomainProgress value)
        {
            var message = new ProtoProgress
            {
                Image = value.Image, Digest = value.Digest, Kind = value.Kind, Phase = value.PhaseName, Bytes = value.Bytes, Total = value.Total,
            };
            lock (_lock)
            {
                if (_pending.TryGetValue((value.Digest, value.Kind), out int i) && _queue[i].Phase == message.Phase) _queue[i] = message;
                else
                {
                    _pending[(value.Digest, value.Kind)] = _queue.Count;
                    _queue.Add(message);
                }
            }
        }

        /// <summary>Runs the transfer and forwards its progress until it ends; returns its result or throws its error.</summary>
        public async Task<T> RunAsync<T>(IServerStreamWriter<ProtoProgress> writer, Func<Task<T>> transfer)
        {
            var operation = Task.Run(transfer);
            try
            {
                while (true)
                {
                    bool finished = operation.IsCompleted;
                    List<ProtoProgress> batch;
                    lock (_lock)
                    {
                        batch = [.. _queue];
                        _queue.Clear();
                        _pending.Clear();
                    }
                    foreach (var message in batch) await writer.WriteAsync(message).ConfigureAwait(false);
                    if (finished) break;
                    await Task.WhenAny(operation, Task.Delay(Interval)).ConfigureAwait(false);
                }
            }
            catch
            {
                // The client went away; the transfer (cancelled with the call) must not fault unobserved.
                _ = operation.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                throw;
            }
            return await operation.ConfigureAwait(false);
        }
    }

    private IEnumerable<Hull.Api.Admin.DeprecationWarning> ToProto(IEnumerable<Core.Deprecations.DeprecationWarning> warnings)
    {
        var published = publisher?.Status;
        return warnings.Select(w => new Hull.Api.Admin.DeprecationWarning
        {
            Id = w.Id,
            Message = w.Message,
            LastOccurrence = w.LastOccurrence.ToString("O"),
            Occurrences = w.Occurrences,
            PublishedOnNode = published?.IsPublished(w.Id) == true,
        });
    }

    private static NodeConditionStatus ToProto(DeprecationPublication p) => new()
    {
        Mode = p.Mode,
        Node = p.Node,
        Server = p.Server,
        Status = p.Published is null ? "" : p.Published.NoDeprecations ? "True" : "False",
        Reason = p.Published?.Reason ?? "",
        PublishedAt = p.PublishedAt?.ToString("O") ?? "",
        Error = p.Error ?? "",
        ErrorAt = p.ErrorAt?.ToString("O") ?? "",
    };
}
