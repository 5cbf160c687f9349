using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;

namespace Hull.E2E.Containers;

/// <summary>
/// Node state is private (containerd's fixes for CVE-2021-41103 and CVE-2024-25621): an unprivileged user on the node
/// can neither list nor read a running pod's bundle, spec, rootfs, /dev/shm, the image blobs or meta.db, even knowing
/// their paths.
/// </summary>
public sealed class NodeStatePrivacyTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback",
        "setpriv", "docker-registry", "skopeo", "umoci")]
    public async Task An_unprivileged_user_reads_nothing_of_a_running_pods_state()
    {
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        var podConfig = PodTestEnvironment.PodConfig("private");
        var pod = await env.RunPodAsync(podConfig);
        var busybox = pushed.Images.Busybox;
        var pulled = await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "app" },
            Image = new ImageSpec { Image = busybox.Reference },
            Command = { "/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done" },
            Envs = { new KeyValue { Key = "DB_PASSWORD", Value = "secret" } },
        };
        var id = (await env.Cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
        await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));

        string bundle = Path.Combine(env.Hulld.State, "containers", id, "bundle");
        string shm = Path.Combine(env.Hulld.State, "sandboxes", pod, "shm");
        string configBlob = Path.Combine(env.Hulld.Root, "content", "blobs", "sha256", pulled.ImageRef.Split(':')[1]);
        var directories = new[] { bundle, Path.Combine(bundle, "rootfs"), Path.Combine(bundle, "rootfs", "bin"), shm };
        var files = new[] { Path.Combine(bundle, "config.json"), Path.Combine(bundle, "rootfs", "bin", "busybox"), configBlob,
            Path.Combine(env.Hulld.Root, "meta.db") };

        // The paths are right: root sees them all (so the refusals below are about modes, not missing files).
        foreach (var d in directories) Assert.True(Directory.Exists(d), d);
        foreach (var f in files) Assert.True(File.Exists(f), f);
        File.WriteAllText(Path.Combine(shm, "note"), "pod shared memory");

        // The test's directory is 0700 (a temp dir): open it as /var/lib is, so only hulld's own modes keep others out.
        File.SetUnixFileMode(env.Dir, (UnixFileMode)0b111_101_101);
        Assert.True(await AsNobodyAsync("ls", env.Dir), "the unprivileged user reaches the node's directory");

        var readable = new List<string>();
        foreach (var d in directories.Append(shm + "/note"))
            if (await AsNobodyAsync("ls", d)) readable.Add("listed " + d);
        foreach (var f in files.Append(shm + "/note"))
            if (await AsNobodyAsync("cat", f)) readable.Add("read " + f);
        Assert.True(readable.Count == 0, "an unprivileged user could: " + string.Join("; ", readable));
    }

    private static async Task<bool> AsNobodyAsync(string command, string path)
    {
        var result = await ProcessRunner.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", command, path]);
        return result.ExitCode == 0;
    }
}
