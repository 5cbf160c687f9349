using Hull.Linux;
using Hull.Linux.Namespaces;
using Hull.Pods.Host;
using Hull.Runtime.Spec;

namespace Hull.Pods.Tests.Fakes;

/// <summary>Bundles as plain directories in a temp dir, with the rootfs "mounted" by creating it; no root needed.</summary>
public sealed class FakeFilesystem(string root, Faults faults) : IContainerFilesystem
{
    public string BundleDirectory(string containerId) => Path.Combine(root, "containers", containerId, "bundle");

    /// <summary>Container directories that exist.</summary>
    public IReadOnlyList<string> Bundles =>
        Directory.Exists(Path.Combine(root, "containers")) ? Directory.GetDirectories(Path.Combine(root, "containers")).Select(d => Path.GetFileName(d)).ToList() : [];

    /// <summary>The pod user namespace each <see cref="MountRootfs"/> was given, by bundle.</summary>
    public Dictionary<string, PinnedUserNamespace?> RootfsUserNamespaces { get; } = [];

    public void MountRootfs(string bundle, IReadOnlyList<Mount> mounts, PinnedUserNamespace? podUserNamespace)
    {
        RootfsUserNamespaces[bundle] = podUserNamespace;
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        faults.Step("rootfs.mount");
    }

    /// <summary>An image volume "mounted" as a directory holding the image's one directory, etc.</summary>
    public string MountImageVolume(string bundle, string name, IReadOnlyList<Mount> mounts)
    {
        string target = Path.Combine(bundle, "image-volumes", name);
        Directory.CreateDirectory(Path.Combine(target, "etc"));
        faults.Step("volume.mount");
        return target;
    }

    public OciSpec PrepareMounts(string bundle, OciSpec spec, PinnedUserNamespace? podUserNamespace) => spec;

    public void ReleasePreparedMounts(string bundle)
    {
    }

    public async Task WriteSpecAsync(string bundle, OciSpec spec, CancellationToken cancellationToken)
    {
        await faults.StepAsync("spec.write").ConfigureAwait(false);
        await SpecWriter.WriteAsync(spec, bundle, cancellationToken).ConfigureAwait(false);
    }

    public Task<string?> ReadSpecAsync(string bundle, CancellationToken cancellationToken) =>
        Task.FromResult(File.Exists(Path.Combine(bundle, SpecWriter.ConfigFileName)) ? File.ReadAllText(Path.Combine(bundle, SpecWriter.ConfigFileName)) : null);

    public void RemoveBundle(string bundle)
    {
        string dir = Path.GetDirectoryName(bundle)!;
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }
}
