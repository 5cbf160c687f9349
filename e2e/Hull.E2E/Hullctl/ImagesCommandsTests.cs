using System.Text.Json;
using System.Text.RegularExpressions;
using Hull.E2E.Fixtures;

namespace Hull.E2E.Hullctl;

/// <summary>`hullctl images …` as an operator runs it, against a real hulld and a real registry.</summary>
public sealed class ImagesCommandsTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);

    /// <summary>hulld with a hosts.toml that reaches the test registry over plain HTTP, push included.</summary>
    private static async Task<HulldProcess> StartHulldForAsync(RegistryProcess registry)
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-").FullName;
        var hosts = Path.Combine(dir, "certs.d", registry.Host);
        Directory.CreateDirectory(hosts);
        await File.WriteAllTextAsync(Path.Combine(hosts, "hosts.toml"), $"""
            server = "http://{registry.Host}"
            [host."http://{registry.Host}"]
              capabilities = ["pull", "resolve", "push"]
            """);
        return await HulldProcess.StartInAsync(dir, $"""
            version = 3
            [plugins.'io.containerd.cri.v1.images'.registry]
              config_path = '{Path.Combine(dir, "certs.d")}'
            [plugins.'io.containerd.transfer.v1.local']
              max_concurrent_uploaded_layers = 2
            """);
    }

    private static Task<ProcessResult> Hullctl(HulldProcess hulld, params string[] args) =>
        ProcessRunner.DotnetAsync(Repo.HullctlDll, ["--address", hulld.Socket, .. args], CommandTimeout);

    private static async Task<ProcessResult> Ok(HulldProcess hulld, params string[] args)
    {
        var result = await Hullctl(hulld, args);
        Assert.True(result.ExitCode == 0, $"hullctl {string.Join(' ', args)}: {result}\nhulld log:\n{hulld.Log}");
        return result;
    }

    /// <summary>The manifest the registry serves for a reference, as skopeo sees it.</summary>
    private static async Task<JsonElement> RawManifestAsync(string reference)
    {
        var result = await ProcessRunner.RunAsync("skopeo", ["inspect", "--tls-verify=false", "--raw", $"docker://{reference}"], CommandTimeout);
        Assert.True(result.ExitCode == 0, $"skopeo inspect {reference}: {result}");
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    private static string Short(string digest) => digest[..19] + "…";

    private static string ImageId(ProcessResult result) =>
        Regex.Match(result.Stdout, @"^Image ID: (sha256:[0-9a-f]{64})$", RegexOptions.Multiline) is { Success: true } m
            ? m.Groups[1].Value
            : throw new Xunit.Sdk.XunitException($"no image ID in:\n{result.Stdout}");

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Pull_ls_tag_push_export_rm_import_and_rm_round_trip_an_image()
    {
        await using var hulld = await StartHulldForAsync(pushed.Registry);
        var busybox = pushed.Images.Busybox;
        var manifest = await RawManifestAsync(busybox.Reference);
        string layer = manifest.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        string config = manifest.GetProperty("config").GetProperty("digest").GetString()!;

        // pull: stdout is not a terminal, so progress comes as plain lines, per layer, then the image ID.
        var pull = await Ok(hulld, "images", "pull", busybox.Reference);
        string id = ImageId(pull);
        Assert.Equal(config, id);
        Assert.Contains($"Pulled {busybox.Reference}", pull.Stdout);
        Assert.Matches($@"(?m)^{Regex.Escape(Short(layer))} layer +(downloading|unpacking) ", pull.Stdout);
        Assert.Matches($@"(?m)^{Regex.Escape(Short(layer))} layer +done +[\d.]+/[\d.]+ (KiB|MiB)$", pull.Stdout);
        Assert.DoesNotContain("\u001b[", pull.Stdout); // no terminal escapes in a log

        // ls: an aligned table, and JSON.
        var ls = await Ok(hulld, "images", "ls");
        Assert.Matches(@"^REF\s+IMAGE ID\s+SIZE\s+PINNED\n", ls.Stdout);
        Assert.Matches($@"(?m)^{Regex.Escape(busybox.Reference)}\s+{id[7..19]}\s+[\d.]+ (KiB|MiB)\s+false$", ls.Stdout);
        var json = JsonDocument.Parse((await Ok(hulld, "images", "ls", "--format", "json")).Stdout).RootElement;
        var listed = Assert.Single(json.EnumerateArray());
        Assert.Equal(id, listed.GetProperty("id").GetString());
        Assert.Contains(busybox.Reference, listed.GetProperty("repoTags").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains(busybox.DigestReference, listed.GetProperty("repoDigests").EnumerateArray().Select(t => t.GetString()));

        // tag: a second name for the same image.
        string pushedName = $"{pushed.Registry.Host}/hull-e2e/hullctl-{Guid.NewGuid():N}:pushed";
        var tag = await Ok(hulld, "images", "tag", busybox.Reference, pushedName);
        Assert.Contains($"Tagged {pushedName} {id}", tag.Stdout);
        Assert.Matches($@"(?m)^{Regex.Escape(pushedName)}\s+{id[7..19]}\s", (await Ok(hulld, "images", "ls")).Stdout);

        // push: to a new repository of the same registry; skopeo sees the same image there.
        var push = await Ok(hulld, "images", "push", pushedName);
        Assert.Matches($@"(?m)^{Regex.Escape(Short(layer))} layer +pushed +[\d.]+/[\d.]+ (KiB|MiB)$", push.Stdout);
        Assert.Matches($@"(?m)^{Regex.Escape(Short(config))} config +pushed ", push.Stdout);
        Assert.Equal(id, ImageId(push));
        string pushedDigest = Regex.Match(push.Stdout, $@"Pushed {Regex.Escape(pushedName)}@(sha256:[0-9a-f]{{64}})").Groups[1].Value;
        Assert.Equal(busybox.Digest, pushedDigest); // the same manifest bytes
        var inspect = await ProcessRunner.RunAsync("skopeo", ["inspect", "--tls-verify=false", $"docker://{pushedName}"], CommandTimeout);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal(pushedDigest, JsonDocument.Parse(inspect.Stdout).RootElement.GetProperty("Digest").GetString());
        Assert.Equal(id, (await RawManifestAsync(pushedName)).GetProperty("config").GetProperty("digest").GetString());

        // A second push finds every blob there already.
        var again = await Ok(hulld, "images", "push", pushedName);
        Assert.Matches($@"(?m)^{Regex.Escape(Short(layer))} layer +exists ", again.Stdout);
        Assert.DoesNotMatch(@"(?m) (layer|config) +pushed ", again.Stdout);

        // export → rm → import brings the same image back under its name.
        string archive = Path.Combine(hulld.Dir, "export", "busybox.tar");
        Directory.CreateDirectory(Path.GetDirectoryName(archive)!);
        var export = await Ok(hulld, "images", "export", archive, busybox.Reference);
        Assert.Contains($"Exported 1 image(s) to {archive}", export.Stdout);
        Assert.True(new FileInfo(archive).Length > 0);

        var rm = await Ok(hulld, "images", "rm", busybox.Reference);
        Assert.Contains($"Removed {busybox.Reference} {id}", rm.Stdout);
        Assert.DoesNotContain(id[7..19], (await Ok(hulld, "images", "ls")).Stdout); // every name of it went

        var import = await Ok(hulld, "images", "import", archive);
        Assert.Contains($"Imported {busybox.Reference} {id}", import.Stdout);
        Assert.Matches($@"(?m)^{Regex.Escape(busybox.Reference)}\s+{id[7..19]}\s", (await Ok(hulld, "images", "ls")).Stdout);

        // rm by ID removes it; the table is empty and a second rm says so.
        await Ok(hulld, "images", "rm", id);
        Assert.Equal("REF   IMAGE ID   SIZE   PINNED", (await Ok(hulld, "images", "ls")).Stdout.Trim());
        var missing = await Hullctl(hulld, "images", "rm", id);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains($"hullctl: image \"{id}\" not found", missing.Stderr);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(hulld.Root, "content", "blobs"), "*", SearchOption.AllDirectories));
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Pushing_a_pulled_multi_platform_image_pushes_the_platform_manifest_it_has()
    {
        await using var hulld = await StartHulldForAsync(pushed.Registry);
        var multiarch = pushed.Images.Multiarch;
        var pull = await Ok(hulld, "images", "pull", multiarch.Reference);
        string id = ImageId(pull);

        // Only this node's platform was pulled, so the index cannot be pushed whole: its manifest goes instead.
        string target = $"{pushed.Registry.Host}/hull-e2e/hullctl-{Guid.NewGuid():N}:platform";
        var push = await Ok(hulld, "images", "push", multiarch.Reference, target);
        Assert.Equal(id, ImageId(push));
        var manifest = await RawManifestAsync(target);
        Assert.False(manifest.TryGetProperty("manifests", out _), "the target names an index");
        Assert.Equal(id, manifest.GetProperty("config").GetProperty("digest").GetString());
        var index = await RawManifestAsync(multiarch.Reference);
        string pushedDigest = Regex.Match(push.Stdout, @"Pushed \S+@(sha256:[0-9a-f]{64})").Groups[1].Value;
        Assert.Contains(pushedDigest, index.GetProperty("manifests").EnumerateArray().Select(m => m.GetProperty("digest").GetString()));

        // Exported and imported, it comes back as the same image.
        string archive = Path.Combine(hulld.Dir, "multiarch.tar");
        await Ok(hulld, "images", "export", archive, multiarch.Reference);
        await Ok(hulld, "images", "rm", multiarch.Reference);
        var import = await Ok(hulld, "images", "import", "--name", "hull.example/imported:v1", archive);
        Assert.Contains($"Imported hull.example/imported:v1 {id}", import.Stdout);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Failures_print_one_clean_line_and_exit_1()
    {
        await using var hulld = await StartHulldForAsync(pushed.Registry);
        async Task Fails(string expected, params string[] args)
        {
            var result = await Hullctl(hulld, args);
            Assert.True(result.ExitCode == 1, $"hullctl {string.Join(' ', args)}: {result}");
            Assert.Contains(expected, result.Stderr);
            Assert.DoesNotContain("   at ", result.Stderr); // no stack trace
            Assert.Single(result.Stderr.Trim().Split('\n'));
        }

        await Fails("hullctl: NotFound:", "images", "pull", $"{pushed.Registry.Host}/hull-test/does-not-exist:latest");
        await Fails("hullctl: NotFound: image \"hull.example/absent:v1\" not found", "images", "push", "hull.example/absent:v1");
        await Fails("hullctl: NotFound: image \"hull.example/absent:v1\" not found", "images", "tag", "hull.example/absent:v1", "hull.example/b:v1");
        await Fails("hullctl: NotFound: archive \"/nonexistent/hull.tar\" not found", "images", "import", "/nonexistent/hull.tar");
        await Fails("does not exist", "images", "export", "/nonexistent/dir/hull.tar", "hull.example/absent:v1");

        // A file that is not an archive is refused, and nothing of it stays.
        string junk = Path.Combine(hulld.Dir, "junk.tar");
        await File.WriteAllTextAsync(junk, new string('x', 4096));
        await Fails("hullctl: InvalidArgument: invalid OCI archive:", "images", "import", junk);
        Assert.Equal("REF   IMAGE ID   SIZE   PINNED", (await Ok(hulld, "images", "ls")).Stdout.Trim());
    }
}
