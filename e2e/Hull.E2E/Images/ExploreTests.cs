using Hull.E2E.Fixtures;
namespace Hull.E2E.Images;
public sealed class ExploreTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Explore()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await using var hulld = await ImageTestSupport.StartHulldAsync(pushed.Registry.Host);
        File.AppendAllText("/tmp/explore/log", $"start {sw.Elapsed}\n");
        sw.Restart();
        await hulld.PullAsync(pushed.Images.Multilayer.Reference);
        File.AppendAllText("/tmp/explore/log", $"pull {sw.Elapsed}\n");
        var r = await ProcessRunner.RunAsync("bash", ["-c", $"cd {hulld.OverlayDir()} && find . -printf '%p %y %u:%g %m %i %n\\n' | grep -v '/bin/' | sort; cp -a {hulld.Root}/snapshots /tmp/explore/"]);
        File.AppendAllText("/tmp/explore/log", r.Stdout + r.Stderr);
        foreach (var m in (await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox)).Layers) File.AppendAllText("/tmp/explore/log", $"busybox layer {m}\n");
    }
}
