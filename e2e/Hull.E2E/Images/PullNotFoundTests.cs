using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>Pulls of what the registry does not have fail with NotFound, say what was missing, and store nothing.</summary>
public sealed class PullNotFoundTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task An_unknown_tag_is_NotFound_naming_the_image()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        string missing = $"{pushed.Images.Busybox.Repository}:no-such-tag";

        var error = await hulld.PullFailsAsync(missing);
        error.AssertCode(StatusCode.NotFound);
        Assert.Contains($"\"{missing}\"", error.Status.Detail);
        await hulld.AssertStoreIsEmptyAsync();

        var unknownRepository = await hulld.PullFailsAsync($"{pushed.Registry.Host}/hull-test/no-such-image:latest");
        unknownRepository.AssertCode(StatusCode.NotFound);
        Assert.Contains("hull-test/no-such-image:latest", unknownRepository.Status.Detail);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task An_index_without_a_linux_amd64_manifest_is_NotFound_naming_the_platform()
    {
        var multiarch = pushed.Images.Multiarch;
        // An index of only the arm64 manifest (already in the repository), under a tag of its own.
        var (_, _, index) = await ImageTestSupport.RawManifestAsync(pushed.Registry.Host, multiarch.RepositoryPath, multiarch.Tag);
        var arm64 = index.GetProperty("manifests").EnumerateArray().Single(m => m.GetProperty("platform").GetProperty("architecture").GetString() == "arm64");
        var armOnly = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = ImageTestSupport.OciIndex,
            ["manifests"] = new JsonArray(JsonNode.Parse(arm64.GetRawText())),
        };
        using (var client = pushed.Registry.CreateClient())
        {
            var body = new ByteArrayContent(Encoding.UTF8.GetBytes(armOnly.ToJsonString()));
            body.Headers.ContentType = new MediaTypeHeaderValue(ImageTestSupport.OciIndex);
            using var put = await client.PutAsync($"v2/{multiarch.RepositoryPath}/manifests/arm64-only", body);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }
        string reference = $"{multiarch.Repository}:arm64-only";

        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var error = await hulld.PullFailsAsync(reference);
        error.AssertCode(StatusCode.NotFound);
        Assert.Contains($"\"{reference}\"", error.Status.Detail);
        Assert.Contains("linux/amd64", error.Status.Detail);
        Assert.Contains("arm64", error.Status.Detail);
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_malformed_reference_is_InvalidArgument_and_reaches_no_registry()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var error = await hulld.PullFailsAsync($"{pushed.Registry.Host}/hull-test/BusyBox:latest");
        error.AssertCode(StatusCode.InvalidArgument);
        Assert.Contains("BusyBox", error.Status.Detail);
        var empty = await hulld.PullFailsAsync("");
        empty.AssertCode(StatusCode.InvalidArgument);
        await hulld.AssertStoreIsEmptyAsync();
    }
}
