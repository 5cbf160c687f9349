using System.Net;
using Hull.Core.Metadata;
using Hull.Pods.Stores;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Tests;

public sealed class SandboxStoreTests
{
    [Fact]
    public async Task A_sandbox_round_trips_through_the_store_with_its_spec_instance_and_state()
    {
        using var root = new TempDirectory();
        {
            using var metadata = MetadataStore.Open(root.Path);
            var store = new SandboxStore(metadata);
            var spec = new PodSandboxSpec
            {
                Id = "abc123",
                Identity = new PodIdentity("web", "default", "uid-1", 1),
                RuntimeHandler = "runc",
                Dns = new PodDns(["10.0.0.10"], ["svc"], []),
                PortMappings = [new PodPortMapping("TCP", 80, 8080, "")],
                Labels = new Dictionary<string, string> { ["app"] = "web" },
                PidMode = NamespaceMode.Pod,
            };
            var created = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
            var instance = new SandboxInstance
            {
                Id = "abc123", CreatedAt = created, State = SandboxState.Ready, NetNsPath = "/run/hull/ns/net/abc123",
                Ips = [IPAddress.Parse("10.88.0.5"), IPAddress.Parse("fd00::5")], NetworkAttached = true, Sandboxer = "podsandbox",
            };
            await store.PutAsync(new SandboxRecord(spec, instance, SandboxState.Ready, created, null), default);
            var record = Assert.Single(await store.ListAsync(default));
            Assert.Equal(SandboxState.Ready, record.State);
            Assert.Equal(created, record.CreatedAt);
            Assert.Equal("web", record.Spec.Identity.Name);
            Assert.Equal(NamespaceMode.Pod, record.Spec.PidMode);
            Assert.Equal(8080, Assert.Single(record.Spec.PortMappings).HostPort);
            Assert.Equal("web", record.Spec.Labels["app"]);
            Assert.Equal(instance.Ips, record.Instance.Ips);
            Assert.True(record.Instance.NetworkAttached);

            var exited = created.AddMinutes(1);
            await store.PutAsync(record with { State = SandboxState.NotReady, ExitedAt = exited }, default);
            record = Assert.Single(await store.ListAsync(default));
            Assert.Equal(SandboxState.NotReady, record.State);
            Assert.Equal(exited, record.ExitedAt);
            Assert.True(await store.DeleteAsync("abc123", default));
            Assert.Empty(await store.ListAsync(default));
        }
    }
}
