using System.Net.WebSockets;
using System.Text;
using System.Text.RegularExpressions;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 2: a pod with an init container, two containers, exec and HTTP probes, env from a ConfigMap, a Secret and
    /// an emptyDir volume and limits runs and becomes Ready; <c>kubectl logs</c>, <c>logs -f</c>, <c>exec -it</c> and
    /// <c>port-forward</c> work through the API server and the kubelet to Hull's streaming server. kubectl v1.26 speaks
    /// SPDY/3.1 (<c>v4.channel.k8s.io</c>) for exec and port-forward, so that is what <c>kubectl exec -it</c> (run under a
    /// pseudo-terminal by <c>script</c>, so kubectl really allocates a TTY) checks; the WebSocket protocol that kubectl ≥
    /// 1.30 uses (<c>v5.channel.k8s.io</c>) is checked with .NET's own ClientWebSocket through the same API server path.
    /// </summary>
    [KubeFact]
    public async Task S2_pod_with_init_container_probes_configmap_env_and_secret_volume_runs_and_streams_work()
    {
        await using var ns = await NamespaceAsync("features");
        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: app-config, namespace: {{ns}}}
            data:
              GREETING: hello-from-configmap
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: app-secret, namespace: {{ns}}}
            stringData:
              token: s3cr3t-token
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: web, namespace: {{ns}}}
            spec:
              terminationGracePeriodSeconds: 5
              volumes:
              - name: shared
                emptyDir: {}
              - name: secret
                secret: {secretName: app-secret}
              initContainers:
              - name: init
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'echo init-ran > /shared/init.txt; echo init container done']
                volumeMounts: [{name: shared, mountPath: /shared}]
              containers:
              - name: web
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'mkdir -p /tmp/www && cp /shared/init.txt /tmp/www/ && echo "$GREETING" > /tmp/www/greeting && cat /etc/secret/token > /tmp/www/token; (i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done) & exec httpd -f -p 8080 -h /tmp/www']
                envFrom:
                - configMapRef: {name: app-config}
                ports: [{containerPort: 8080}]
                readinessProbe:
                  httpGet: {path: /greeting, port: 8080}
                  periodSeconds: 2
                livenessProbe:
                  exec: {command: [cat, /etc/secret/token]}
                  periodSeconds: 3
                resources:
                  requests: {cpu: 50m, memory: 16Mi}
                  limits: {cpu: 500m, memory: 64Mi}
                volumeMounts:
                - {name: shared, mountPath: /shared}
                - {name: secret, mountPath: /etc/secret, readOnly: true}
              - name: sidecar
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "exit 0" TERM; i=0; while true; do echo "sidecar line $i"; i=$((i+1)); sleep 0.5; done']
                readinessProbe:
                  exec: {command: [test, -f, /shared/init.txt]}
                  periodSeconds: 2
                livenessProbe:
                  httpGet: {path: /token, port: 8080}
                  initialDelaySeconds: 5
                  periodSeconds: 3
                volumeMounts: [{name: shared, mountPath: /shared}]
            """);
        var pod = await Pods.WaitAsync(Cluster, ns.Name, "web", Pods.IsReady, PodStart, "Ready");
        Log($"pod web Ready on {pod["spec"]!["nodeName"]}, IP {pod["status"]!["podIP"]}");
        Assert.Equal(Node.Name, (string?)pod["spec"]!["nodeName"]);
        Assert.StartsWith(Node.PodSubnetPrefix, (string?)pod["status"]!["podIP"]);
        var init = Pods.Container(pod, "init", init: true)!;
        Assert.Equal(0, (int?)init["state"]!["terminated"]!["exitCode"]);
        Assert.Equal("Completed", (string?)init["state"]!["terminated"]!["reason"]);

        // kubectl logs: the init container's and the running container's output.
        Assert.Contains("init container done", await Cluster.KubectlOkAsync("logs", "-n", ns.Name, "web", "-c", "init"));
        var logs = await WaitForKubectlOutputAsync(["logs", "-n", ns.Name, "web", "-c", "web"], o => o.Contains("tick 1"), "tick 1 in the log");
        Assert.StartsWith("tick 0\n", logs);

        // kubectl logs -f follows: lines written after it started arrive.
        await using (var follow = Cluster.StartKubectl("logs", "-f", "-n", ns.Name, "web", "-c", "sidecar", "--tail=1"))
        {
            var first = await follow.WaitForOutputAsync(o => o.Contains('\n'), TimeSpan.FromSeconds(30), "the last line");
            int firstIndex = SidecarLineNumbers(first).First();
            var followed = await follow.WaitForOutputAsync(o => SidecarLineNumbers(o).Any(i => i >= firstIndex + 3), TimeSpan.FromSeconds(30), "three more lines");
            Assert.Equal(SidecarLineNumbers(followed).ToList(), Enumerable.Range(firstIndex, SidecarLineNumbers(followed).Count()).ToList());
            Assert.False(follow.HasExited, "kubectl logs -f ended while the container runs");
        }

        // kubectl exec (no TTY): env from the ConfigMap and the Secret volume inside the container.
        Assert.Equal("hello-from-configmap s3cr3t-token",
            (await Cluster.KubectlOkAsync("exec", "-n", ns.Name, "web", "-c", "web", "--", "sh", "-c", "echo $GREETING $(cat /etc/secret/token)")).Trim());

        // kubectl exec -it: a real TTY in the container, stdin reaches the shell, the exit code comes back.
        await using (var tty = KubectlSession.StartUnderPty(Cluster.AdminKubeconfig, ["exec", "-it", "-n", ns.Name, "web", "-c", "web", "--", "sh"]))
        {
            await tty.Stdin.WriteAsync("echo tty:$(tty); echo sum:$((40+2)); exit 7\n");
            await tty.Stdin.FlushAsync();
            int code = await tty.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Log("exec -it output: " + tty.Stdout.Replace("\r", ""));
            Assert.Contains("tty:/dev/pts/", tty.Stdout);
            Assert.Contains("sum:42", tty.Stdout);
            Assert.Equal(7, code);
        }

        // The same exec over WebSocket, through the API server and the kubelet to Hull's streaming server.
        var (protocol, wsOutput, status) = await ExecOverWebSocketAsync(ns.Name, "web", "web", "hello over websocket\n",
            "sh", "-c", "read line; echo \"got:$line\"; echo to-stderr >&2");
        Log($"WebSocket exec: protocol {protocol}, stdout {wsOutput.Stdout.Trim()}, status {status}");
        Assert.Equal("v5.channel.k8s.io", protocol);
        Assert.Equal("got:hello over websocket\n", wsOutput.Stdout);
        Assert.Equal("to-stderr\n", wsOutput.Stderr);
        Assert.Contains("\"status\":\"Success\"", status);

        // kubectl port-forward: the container's httpd serves the ConfigMap value, the Secret and the init container's file.
        await using (var forward = Cluster.StartKubectl("port-forward", "-n", ns.Name, "pod/web", ":8080"))
        {
            var line = await forward.WaitForOutputAsync(o => ForwardingPort().IsMatch(o), TimeSpan.FromSeconds(30), "Forwarding from 127.0.0.1:PORT");
            int port = int.Parse(ForwardingPort().Match(line).Groups[1].Value);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(20) };
            Assert.Equal("hello-from-configmap\n", await http.GetStringAsync("greeting"));
            Assert.Equal("s3cr3t-token", await http.GetStringAsync("token"));
            Assert.Equal("init-ran\n", await http.GetStringAsync("init.txt"));
            // Many requests on fresh connections: each is a new stream through the same SPDY session.
            for (int i = 0; i < 10; i++) Assert.Equal("hello-from-configmap\n", await http.GetStringAsync($"greeting?{i}"));
        }

        // Probes kept passing: nothing restarted, still Ready.
        pod = await Cluster.GetAsync($"api/v1/namespaces/{ns}/pods/web");
        Assert.True(Pods.IsReady(pod), "pod web is no longer Ready: " + pod["status"]!.ToJsonString());
        Assert.Equal(0, Pods.RestartCount(pod, "web"));
        Assert.Equal(0, Pods.RestartCount(pod, "sidecar"));
    }

    private static IEnumerable<int> SidecarLineNumbers(string output) =>
        output.Split('\n').Where(l => l.StartsWith("sidecar line ", StringComparison.Ordinal)).Select(l => int.Parse(l["sidecar line ".Length..]));

    [GeneratedRegex(@"Forwarding from 127\.0\.0\.1:(\d+) ->")]
    private static partial Regex ForwardingPort();

    /// <summary>Runs kubectl until its output satisfies <paramref name="condition"/> (the log may not have it yet).</summary>
    private async Task<string> WaitForKubectlOutputAsync(string[] args, Func<string, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var result = await Cluster.KubectlAsync(args);
            if (result.ExitCode == 0 && condition(result.Stdout)) return result.Stdout;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"kubectl {string.Join(' ', args)}: no {what}: {result}");
            await Task.Delay(500);
        }
    }

    /// <summary>
    /// Exec over WebSocket as kubectl ≥ 1.30 does it: <c>GET …/pods/NAME/exec</c> upgraded to WebSocket with the
    /// channel protocols offered (v5 first), stdin written on channel 0 and closed with the v5 close frame (255, 0),
    /// stdout/stderr read from channels 1 and 2 and the status from channel 3.
    /// </summary>
    private async Task<(string? Protocol, (string Stdout, string Stderr) Output, string Status)> ExecOverWebSocketAsync(
        string ns, string pod, string container, string stdin, params string[] command)
    {
        var query = new StringBuilder($"container={container}&stdin=true&stdout=true&stderr=true");
        foreach (var part in command) query.Append("&command=").Append(Uri.EscapeDataString(part));
        var uri = new Uri($"wss://{Cluster.Server.Authority}/api/v1/namespaces/{ns}/pods/{pod}/exec?{query}");
        using var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol("v5.channel.k8s.io");
        ws.Options.AddSubProtocol("v4.channel.k8s.io");
        ws.Options.ClientCertificates.Add(Cluster.AdminCertificate.Load());
        ws.Options.RemoteCertificateValidationCallback = (_, certificate, _, _) => Cluster.Pki.Verify(certificate);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await ws.ConnectAsync(uri, cts.Token);

        var data = Encoding.UTF8.GetBytes(stdin);
        await ws.SendAsync(new byte[] { 0 }.Concat(data).ToArray(), WebSocketMessageType.Binary, true, cts.Token);
        if (ws.SubProtocol == "v5.channel.k8s.io") await ws.SendAsync(new byte[] { 255, 0 }, WebSocketMessageType.Binary, true, cts.Token);

        var streams = new Dictionary<int, MemoryStream> { [1] = new(), [2] = new(), [3] = new() };
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (ws.State == WebSocketState.Open)
        {
            var result = await ws.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close) break;
            message.Write(buffer, 0, result.Count);
            if (!result.EndOfMessage) continue;
            var frame = message.ToArray();
            message.SetLength(0);
            // The first frame on each channel of v4/v5 may be empty (just the channel byte).
            if (frame.Length > 1 && streams.TryGetValue(frame[0], out var stream)) stream.Write(frame, 1, frame.Length - 1);
        }
        string Text(int channel) => Encoding.UTF8.GetString(streams[channel].ToArray());
        return (ws.SubProtocol, (Text(1), Text(2)), Text(3));
    }
}
