using Hull.E2E.Fixtures;
using Hull.Node.E2E.NodeConditions;
using Xunit.Abstractions;

namespace Hull.Node.E2E.Deploy;

/// <summary>
/// deploy/kubernetes and charts/hull against the real API server: every object is accepted by
/// <c>kubectl apply --dry-run=server</c> (schema, defaulting, validation and admission run; nothing is stored), for the
/// chart's defaults and with every value changed; the plain manifests are the chart's rendering. About 30 s.
/// </summary>
[Collection(ApiServerCollection.Name)]
public sealed class DeployTests(ApiServerFixture fixture, ITestOutputHelper output)
{
    /// <summary>Values that change everything the chart lets an operator change.</summary>
    public const string ChangedValues = """
        image: {repository: registry.example.com/hull/installer, tag: "1.2.3", pullPolicy: Always}
        nodeSelector: {node-role.example.com/hull: "yes"}
        tolerations: [{key: example.com/dedicated, operator: Equal, value: hull, effect: NoSchedule}]
        priorityClassName: ""
        install:
          startService: none
          hostPackages: false
          resources: {requests: {cpu: 20m, memory: 64Mi}}
        hostPaths: {install: /srv/hull, bin: /srv/bin, config: /srv/etc/hull, systemd: /srv/systemd, state: /srv/run/hull}
        reporter:
          extraEnv: [{name: KUBERNETES_SERVICE_HOST, value: 10.0.0.1}]
          resources: {requests: {cpu: 1m, memory: 32Mi}}
        config: |
          version = 3
          [plugins.'io.hull.kube.v1.node-conditions']
            enable = true
            resync_interval = '1m'
        """;

    [DeployFact(cluster: false)]
    public async Task The_plain_manifests_are_the_chart_rendered_for_release_hull_in_namespace_hull_system()
    {
        string expected = PlainManifestsHeader + await Chart.RenderAsync("hull", "hull-system");
        string actual = await File.ReadAllTextAsync(Chart.PlainManifests);
        Assert.True(expected == actual, $"{Chart.PlainManifests} is not the chart's rendering: run hack/render-manifests.sh");
    }

    /// <summary>What hack/render-manifests.sh puts before the rendering.</summary>
    public const string PlainManifestsHeader = """
        # Hull's DaemonSet installer: kubectl apply -f deploy/kubernetes/hull.yaml, then label the nodes that get Hull
        # (kubectl label node NAME hull.io/install=true). Generated from charts/hull (release "hull", namespace
        # "hull-system") by hack/render-manifests.sh: edit the chart, not this file.
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: hull-system

        """;

    [DeployFact]
    public async Task The_plain_manifests_and_every_object_of_the_chart_are_accepted_by_the_API_server()
    {
        var cluster = fixture.Cluster;
        // A dry run creates nothing, so the objects' namespaces must exist for real.
        foreach (var ns in new[] { "hull-system", "hull-chart" })
            if (await cluster.Api.GetAsync($"api/v1/namespaces/{ns}") is null) await cluster.KubectlOkAsync("create", "namespace", ns);

        var plain = await cluster.KubectlAsync(["apply", "--dry-run=server", "-f", Chart.PlainManifests]);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        output.WriteLine(plain.Stdout);
        foreach (var kind in new[] { "namespace/hull-system", "serviceaccount/hull", "configmap/hull-config", "clusterrole.rbac.authorization.k8s.io/hull-node-conditions",
            "clusterrolebinding.rbac.authorization.k8s.io/hull-node-conditions", "daemonset.apps/hull" })
            Assert.Contains($"{kind} ", plain.Stdout);

        foreach (var values in new[] { null, ChangedValues })
        {
            var documents = Chart.Documents(await Chart.RenderAsync("hull", "hull-chart", values));
            Assert.Equal(5, documents.Count);
            foreach (var document in documents)
            {
                string file = Path.Combine(cluster.Dir, $"object-{Guid.NewGuid():N}.yaml");
                await File.WriteAllTextAsync(file, document);
                var result = await cluster.KubectlAsync(["apply", "--dry-run=server", "-f", file]);
                Assert.True(result.ExitCode == 0, $"{result}\n{document}");
                Assert.Contains("(server dry run)", result.Stdout);
            }
        }
    }

    [DeployFact(cluster: false)]
    public async Task The_chart_passes_its_values_through_and_its_node_config_is_a_clean_Hull_config_that_publishes_the_condition()
    {
        string rendered = await Chart.RenderAsync("edge", "ops", ChangedValues);
        foreach (var expected in new[] {
            "image: \"registry.example.com/hull/installer:1.2.3\"", "imagePullPolicy: Always", "node-role.example.com/hull: \"yes\"",
            "key: example.com/dedicated", "value: \"none\"", "path: \"/srv/etc/hull\"", "mountPath: \"/srv/run/hull\"",
            "- name: KUBERNETES_SERVICE_HOST\n              value: 10.0.0.1", "resync_interval = '1m'", "namespace: ops", "name: edge-node-conditions" })
            Assert.Contains(expected, rendered);
        Assert.DoesNotContain("priorityClassName", rendered);

        // The node config the chart installs by default loads without a single diagnostic and turns the reporter on.
        string defaults = await Chart.RenderAsync("hull", "hull-system");
        var configMap = Chart.Documents(defaults).Single(d => d.Contains("kind: ConfigMap"));
        string toml = string.Join('\n', configMap.Split('\n').SkipWhile(l => !l.Contains("config.toml: |")).Skip(1)
            .Select(l => l.Length >= 4 ? l[4..] : l.TrimStart()));
        string path = Path.Combine(Path.GetTempPath(), $"hull-chart-config-{Guid.NewGuid():N}.toml");
        await File.WriteAllTextAsync(path, toml);
        try
        {
            var check = await ProcessRunner.DotnetAsync(Repo.HulldDll, ["config", "check", "--config", path]);
            Assert.True(check.ExitCode == 0 && check.Stdout.Contains("config OK") && !check.Stdout.Contains("warning"), check.ToString());
            var dump = await ProcessRunner.DotnetAsync(Repo.HulldDll, ["config", "dump", "--config", path]);
            Assert.Contains("[plugins.\"io.hull.kube.v1.node-conditions\"]\nenable = true\nkubeconfig = \"\"\nnode_name = \"\"", dump.Stdout);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
