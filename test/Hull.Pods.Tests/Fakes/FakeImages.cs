using System.Collections.Concurrent;
using Hull.Core;
using Hull.Images.Snapshots;
using Hull.Linux;
using Hull.Pods.Images;
using Hull.Runtime.Spec;

namespace Hull.Pods.Tests.Fakes;

/// <summary>One image ("busybox", also found by its id) and a snapshotter that keeps snapshot keys in memory.</summary>
public sealed class FakeImages(Faults faults) : IContainerImages, ISnapshotter
{
    public const string Image = "busybox";
    public const string ImageId = "sha256:image";
    /// <summary>The image's tag: what containers report it by.</summary>
    public const string ImageTag = "docker.io/library/busybox:latest";
    private readonly ConcurrentDictionary<string, SnapshotInfo> _snapshots = new(StringComparer.Ordinal);

    /// <summary>Snapshots that exist (prepared or viewed, and not removed).</summary>
    public IReadOnlyCollection<string> Snapshots => _snapshots.Keys.ToList();

    public ISnapshotter Snapshotter => this;

    public Task<ContainerImage?> FindAsync(string reference, CancellationToken cancellationToken) =>
        Task.FromResult(reference is Image or ImageId or ImageTag
            ? new ContainerImage(ImageId, "sha256:chain", "busybox@sha256:digest", new ImageConfig { Cmd = ["sh"] }) { Name = ImageTag }
            : null);

    public Task<ContainerImage> PullAsync(string reference, CancellationToken cancellationToken) =>
        throw new HullException(ErrorKind.NotFound, $"image \"{reference}\" cannot be pulled in a unit test");

    public string Name => "overlayfs";

    public Task<SnapshotInfo> StatAsync(string key, CancellationToken cancellationToken) =>
        Task.FromResult(_snapshots.TryGetValue(key, out var info) ? info : throw new HullException(ErrorKind.NotFound, $"snapshot \"{key}\" not found"));

    public Task<SnapshotInfo?> TryStatAsync(string key, CancellationToken cancellationToken) => Task.FromResult(_snapshots.GetValueOrDefault(key));

    /// <summary>One page and one inode for any snapshot there is.</summary>
    public Task<SnapshotUsage> UsageAsync(string key, CancellationToken cancellationToken) =>
        Task.FromResult(_snapshots.ContainsKey(key) ? new SnapshotUsage(4096, 1) : throw new HullException(ErrorKind.NotFound, $"snapshot \"{key}\" not found"));

    public Task<IReadOnlyList<Mount>> MountsAsync(string key, CancellationToken cancellationToken) => throw new NotSupportedException();

    public async Task<IReadOnlyList<Mount>> PrepareAsync(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null,
        CancellationToken cancellationToken = default)
    {
        await faults.StepAsync("snapshot.prepare").ConfigureAwait(false);
        _snapshots[key] = new SnapshotInfo(key, parent, SnapshotKind.Active, labels ?? new Dictionary<string, string>(), DateTimeOffset.UtcNow, DateTimeOffset.UtcNow);
        return [];
    }

    public async Task<IReadOnlyList<Mount>> ViewAsync(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null,
        CancellationToken cancellationToken = default)
    {
        await faults.StepAsync("snapshot.view").ConfigureAwait(false);
        _snapshots[key] = new SnapshotInfo(key, parent, SnapshotKind.View, labels ?? new Dictionary<string, string>(), DateTimeOffset.UtcNow, DateTimeOffset.UtcNow);
        return [];
    }

    public Task CommitAsync(string name, string key, IReadOnlyDictionary<string, string>? labels = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        _snapshots.TryRemove(key, out _);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<SnapshotInfo>> WalkAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<SnapshotInfo>>(_snapshots.Values.ToList());

    public Task CleanupAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
