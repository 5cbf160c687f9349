using System.Text.Json.Nodes;
using Hull.Node.E2E.Deploy;
using Hull.Node.E2E.NodeConditions;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// The DaemonSet installer (issue 18) through the real kubelet: the image hack/build-image.sh built, pushed to the
    /// test registry; the chart rendered with the host paths pointed at a temporary directory (and hulld's socket
    /// directory at this node's hulld); startService none, since this host is shared. The init container installs
    /// hulld, hullctl, the config and the unit there; the reporter container then publishes the condition on this Node
    /// with the pod's service account (in-cluster credentials; the API server's address is given explicitly, since no
    /// kube-proxy routes the kubernetes Service here) and the downward API's node name.
    /// </summary>
    [InstallerImageFact]
    public async Task S9b_the_DaemonSet_installs_Hull_into_its_host_paths_and_its_reporter_publishes_the_condition()
    {
        string image = await InstallerImage.PushAsync(fixture.Registry);
        await using var ns = await NamespaceAsync("installer");
        var host = Directory.CreateTempSubdirectory("hull-installer-host-").FullName;
        string Host(string name) => Path.Combine(host, name);
        string socketDir = Path.GetDirectoryName(Node.Runtime.Socket)!;
        string config = $"""
            version = 3
            [grpc]
              address = '{Node.Runtime.Socket}'
            [plugins.'io.hull.kube.v1.node-conditions']
              enable = true
              resync_interval = '3s'
            """;
        string values = $$"""
            image: {repository: "{{image[..image.LastIndexOf(':')]}}", tag: "{{InstallerImage.Tag}}", pullPolicy: IfNotPresent}
            install: {startService: none, hostPackages: false}
            hostPaths: {install: "{{Host("opt-hull")}}", bin: "{{Host("bin")}}", config: "{{Host("etc-hull")}}", systemd: "{{Host("systemd")}}", state: "{{socketDir}}"}
            reporter:
              extraEnv:
                - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
                - {name: KUBERNETES_SERVICE_PORT, value: "{{Cluster.Server.Port}}"}
            config: |
            {{string.Join('\n', config.Split('\n').Select(l => "  " + l))}}
            """;
        string manifests = Path.Combine(Cluster.Dir, "installer.yaml");
        await File.WriteAllTextAsync(manifests, await Chart.RenderAsync("hull", ns.Name, values));
        try
        {
            // What an operator does: the chart's nodeSelector picks the nodes labelled for Hull.
            await Cluster.KubectlOkAsync("label", "node", Node.Name, "hull.io/install=true");
            await Cluster.KubectlOkAsync("apply", "-f", manifests);
            var pod = await WaitForInstallerPodAsync(ns.Name);
            string name = (string)pod["metadata"]!["name"]!;

            string install = await Cluster.KubectlOkAsync("logs", "-n", ns.Name, name, "-c", "install");
            Log("install: " + install);
            Assert.Contains($"installed hull {InstallerImage.Tag} in {Host("opt-hull")}/{InstallerImage.Tag}", install);
            Assert.Contains("not starting hulld (install.startService = none)", install);
            Assert.Equal(InstallerImage.Tag, new FileInfo(Host("opt-hull/current")).LinkTarget);
            Assert.Equal($"{Host("opt-hull")}/current/hulld", new FileInfo(Host("bin/hulld")).LinkTarget);
            Assert.Equal(config + "\n", await File.ReadAllTextAsync(Host("etc-hull/config.toml")));
            Assert.Contains($"ExecStart={Host("bin")}/hulld --config {Host("etc-hull")}/config.toml", await File.ReadAllTextAsync(Host("systemd/hulld.service")));
            // What was installed runs on this host: the self-contained hulld checks the config it was given.
            var check = await Hull.E2E.Fixtures.ProcessRunner.RunAsync(Host("bin/hulld"), ["config", "check", "--config", Host("etc-hull/config.toml")]);
            Assert.True(check.ExitCode == 0, check.ToString());

            string published = $"node conditions: node {Node.Name} has {Conditions.Hull}=";
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            string reporter;
            while (!(reporter = (await Cluster.KubectlAsync(["logs", "-n", ns.Name, name, "-c", "node-conditions"])).Stdout).Contains(published))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the reporter did not publish within 60 s:\n{reporter}");
                await Task.Delay(1000);
            }
            Log("node-conditions: " + reporter);
            Assert.Contains($"on node {Node.Name} every 00:00:03 (in-cluster service account)", reporter);
            var condition = Conditions.Find(await Cluster.GetAsync($"api/v1/nodes/{Node.Name}"), Conditions.Hull);
            Assert.NotNull(condition);
        }
        finally
        {
            await Cluster.KubectlAsync(["delete", "-f", manifests, "--ignore-not-found", "--wait=true", "--timeout=90s"], TimeSpan.FromSeconds(120));
            await Cluster.KubectlAsync(["label", "node", Node.Name, "hull.io/install-"]);
            Directory.Delete(host, recursive: true);
        }
    }

    private async Task<JsonNode> WaitForInstallerPodAsync(string ns)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        while (true)
        {
            var pods = await Cluster.Api.ListAsync($"api/v1/namespaces/{ns}/pods?labelSelector=app.kubernetes.io%2Fname%3Dhull");
            if (pods.FirstOrDefault(Pods.IsReady) is { } ready) return ready;
            if (DateTime.UtcNow > deadline)
            {
                var events = await Cluster.KubectlAsync(["get", "events", "-n", ns]);
                var daemonSet = await Cluster.Api.GetAsync($"apis/apps/v1/namespaces/{ns}/daemonsets/hull");
                throw new TimeoutException($"no Ready installer pod in {ns} within 180 s: DaemonSet status {daemonSet?["status"]?.ToJsonString()}; " +
                    $"pods {string.Join("\n", pods.Select(p => p["status"]?.ToJsonString()))}\n{events.Stdout}");
            }
            await Task.Delay(1000);
        }
    }
}
