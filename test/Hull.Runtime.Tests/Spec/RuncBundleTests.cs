using System.Text;
using Hull.Core.Processes;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

/// <summary>A fact that runs runc for real: needs root, runc and a static busybox (Debian runc, busybox-static).</summary>
public sealed class RuncFactAttribute : FactAttribute
{
    public static string? Runc => Find("runc", "/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc");
    public static string? Busybox => Find("busybox", "/bin/busybox", "/usr/bin/busybox");

    public RuncFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess) Skip = "needs root (runc creates namespaces and cgroups)";
        else if (Runc is null) Skip = "needs runc (Debian package runc)";
        else if (Busybox is null) Skip = "needs a static busybox (Debian package busybox-static)";
    }

    private static string? Find(string name, params string[] candidates)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Join(dir, name))) return Path.Join(dir, name);
        return candidates.FirstOrDefault(File.Exists);
    }
}

/// <summary>The generated config.json is accepted by the real runc and the container runs.</summary>
public class RuncBundleTests
{
    [RuncFact]
    public async Task Runc_runs_a_busybox_container_from_the_generated_spec()
    {
        using var dir = new TempDirectory();
        string suffix = Guid.NewGuid().ToString("N")[..12];
        string id = $"hull-spec-{suffix}";
        string cgroupParent = $"/hull-spec-test-{suffix}";
        string runcRoot = dir.Dir("runc-state");

        // A busybox rootfs with a passwd entry, so the spec's user comes from the image.
        string rootfs = dir.Dir("bundle/rootfs");
        Directory.CreateDirectory(Path.Join(rootfs, "bin"));
        File.Copy(RuncFactAttribute.Busybox!, Path.Join(rootfs, "bin", "busybox"));
        File.CreateSymbolicLink(Path.Join(rootfs, "bin", "sh"), "busybox");
        dir.Write("bundle/rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
        dir.Write("bundle/rootfs/etc/group", "root:x:0:\napp:x:1000:\nstaff:x:50:app\n");
        string data = dir.Dir("data");
        File.WriteAllText(Path.Join(data, "note"), "from-host\n");

        // Where hulld may not lower its oom_score_adj (this CI machine lacks CAP_SYS_RESOURCE), clamp like containerd.
        bool canLower = OomScoreAdjPolicy.CanLower();
        var host = HostInfo.Detect();
        var builder = new SpecBuilder(new SpecBuilderOptions { RestrictOomScoreAdj = !canLower }, host);
        var request = new ContainerSpecRequest
        {
            Handler = SpecFixtures.Handler(),
            ContainerId = id,
            RootfsPath = rootfs,
            ImageName = "local/busybox:test",
            Image = new ImageConfig { User = "app", Env = ["FROM_IMAGE=1"] },
            Container = new ContainerConfig
            {
                Name = "probe",
                Command = ["/bin/sh", "-c", "echo ok; /bin/busybox id -u; /bin/busybox id -G; /bin/busybox cat /data/note; echo $FROM_IMAGE $HOME"],
                Mounts = [new ContainerMount { ContainerPath = "/data", HostPath = data, Readonly = true }],
                Resources = new LinuxResources { OomScoreAdj = -998, CpuShares = 512, MemoryLimitInBytes = 64 << 20 },
                Security = new ContainerSecurity { Seccomp = SecurityProfile.RuntimeDefault, SupplementalGroups = [2000], PidMode = PidNamespaceMode.Container },
            },
            Sandbox = new SandboxContext
            {
                SandboxId = $"pod-{suffix}",
                Hostname = "spec-test",
                Network = NamespaceRef.New,
                Ipc = NamespaceRef.New,
                Uts = NamespaceRef.New,
                CgroupParent = cgroupParent,
            },
        };
        var spec = await builder.BuildAsync(request);
        Assert.True(spec.Process!.OomScoreAdj >= (canLower ? -998 : OomScoreAdjPolicy.Current()));
        string bundle = Path.Join(dir.Path, "bundle");
        await SpecWriter.WriteAsync(spec, bundle);

        try
        {
            var outcome = await ProcessRunner.RunAsync(new ProcessSpec(RuncFactAttribute.Runc!, ["--root", runcRoot, "run", "--bundle", bundle, id])
            {
                Timeout = TimeSpan.FromSeconds(60),
            });
            string stdout = outcome.StdoutText;
            Assert.True(outcome.ExitCode == 0, $"runc exited {outcome.ExitCode}: {outcome.Stderr}\nstdout: {stdout}\nconfig: {File.ReadAllText(Path.Join(bundle, "config.json"))}");
            Assert.Equal(["ok", "1000", "1000 50 2000", "from-host", "1 /home/app"], stdout.TrimEnd('\n').Split('\n'));
        }
        finally
        {
            await ProcessRunner.RunAsync(new ProcessSpec(RuncFactAttribute.Runc!, ["--root", runcRoot, "delete", "-f", id]) { Timeout = TimeSpan.FromSeconds(30) });
            RemoveCgroups(cgroupParent);
        }
    }

    /// <summary>runc removes the container's cgroup; the parent made for the test goes here, in every hierarchy.</summary>
    private static void RemoveCgroups(string parent)
    {
        var candidates = new List<string> { Path.Join("/sys/fs/cgroup", parent) };
        if (Directory.Exists("/sys/fs/cgroup"))
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
                candidates.Add(Path.Join(hierarchy, parent));
        foreach (var path in candidates.Distinct())
        {
            if (!Directory.Exists(path)) continue;
            foreach (var child in Directory.EnumerateDirectories(path).OrderByDescending(p => p.Length))
                TryRmdir(child);
            TryRmdir(path);
        }
    }

    private static void TryRmdir(string path)
    {
        try { Directory.Delete(path, recursive: false); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
