using System.Text.Json;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>The bindir image verifier plugin, configured in config.toml and exercised through CRI PullImage.</summary>
public sealed class ImageVerifierTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    /// <summary>A verifier script that records its arguments and stdin, prints <paramref name="say"/> and exits <paramref name="exit"/>.</summary>
    private static async Task<string> VerifierAsync(string binDir, string name, string record, string say, int exit)
    {
        Directory.CreateDirectory(binDir);
        var path = Path.Combine(binDir, name);
        await File.WriteAllTextAsync(path, $"""
            #!/bin/sh
            printf '%s\n' "$@" > '{record}.args'
            cat > '{record}.stdin'
            echo '{say}'
            exit {exit}

            """);
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    private static string BinDirSection(string binDir) => $"""
        [plugins.'io.containerd.image-verifier.v1.bindir']
          bin_dir = '{binDir}'
          per_verifier_timeout = '10s'
        """;

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_rejecting_verifier_fails_the_pull_with_its_name_and_reason_and_nothing_is_stored()
    {
        var work = Directory.CreateTempSubdirectory("hull-e2e-verifier-").FullName;
        try
        {
            string binDir = Path.Combine(work, "bin"), record = Path.Combine(work, "deny");
            await VerifierAsync(binDir, "deny-unsigned", record, "busybox is not signed by hull-test", exit: 1);
            await using var hulld = await ImageTestSupport.StartHulldAsync(pushed.Registry.Host, extraSections: BinDirSection(binDir));
            var busybox = pushed.Images.Busybox;

            var error = await hulld.PullFailsAsync(busybox.Reference);
            error.AssertCode(StatusCode.FailedPrecondition);
            Assert.Contains($"\"{busybox.Reference}\"", error.Status.Detail);
            Assert.Contains("deny-unsigned", error.Status.Detail);
            Assert.Contains("busybox is not signed by hull-test", error.Status.Detail);
            await hulld.AssertStoreIsEmptyAsync();
            Assert.True(File.Exists(record + ".args"), "the verifier did not run");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task An_allowing_verifier_gets_the_image_name_digest_and_descriptor_and_the_pull_succeeds()
    {
        var work = Directory.CreateTempSubdirectory("hull-e2e-verifier-").FullName;
        try
        {
            string binDir = Path.Combine(work, "bin"), record = Path.Combine(work, "allow");
            await VerifierAsync(binDir, "allow-all", record, "looks fine", exit: 0);
            await using var hulld = await ImageTestSupport.StartHulldAsync(pushed.Registry.Host, extraSections: BinDirSection(binDir));
            var multiarch = pushed.Images.Multiarch;

            await hulld.PullAsync(multiarch.Reference);
            Assert.NotNull(await hulld.StatusAsync(multiarch.Reference));
            // The verifier judges what the name resolved to: here the index.
            Assert.Equal(["-name", multiarch.Reference, "-digest", multiarch.Digest, "-stdin-media-type", "application/vnd.oci.descriptor.v1+json"],
                await File.ReadAllLinesAsync(record + ".args"));
            var descriptor = JsonDocument.Parse(await File.ReadAllTextAsync(record + ".stdin")).RootElement;
            Assert.Equal(multiarch.Digest, descriptor.GetProperty("digest").GetString());
            Assert.Equal(ImageTestSupport.OciIndex, descriptor.GetProperty("mediaType").GetString());
            Assert.True(descriptor.GetProperty("size").GetInt64() > 0);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
