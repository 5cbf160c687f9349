using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Hull.E2E.Fixtures;

namespace Hull.Node.E2E.Cluster;

public sealed record KubeClusterOptions
{
    /// <summary>
    /// Also run kube-scheduler and kube-controller-manager (Deployments, ReplicaSets, DaemonSets, service accounts and
    /// their root CA ConfigMap, namespace deletion, garbage collection). Without them the API server serves objects, and
    /// pods must name their node and run without a service account.
    /// </summary>
    public bool Controllers { get; init; }
}

/// <summary>
/// A Kubernetes control plane of real binaries on 127.0.0.1, random free ports, everything in a temporary directory:
/// etcd (Debian's 3.4, data on tmpfs so the shared disk sees no fsync load) and kube-apiserver with certificates from
/// <see cref="ClusterPki"/> (Node + RBAC authorization, NodeRestriction admission), optionally kube-scheduler and
/// kube-controller-manager. Usable alone (the node-condition tests need only the API server) or under a
/// <c>KubeNode</c>. Disposing it stops every process by pid and removes its directories; it then checks that no
/// process mentioning them is left.
/// </summary>
public sealed class KubeCluster : IAsyncDisposable
{
    /// <summary>The Service IP range (no kube-proxy: nothing routes it).</summary>
    public const string ServiceCidr = "10.92.0.0/24";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly List<DaemonProcess> _processes = [];
    private int _disposed;

    private KubeCluster(string dir, string etcdDir, ClusterPki pki, int apiPort)
    {
        Dir = dir;
        EtcdDir = etcdDir;
        Pki = pki;
        Server = new Uri($"https://127.0.0.1:{apiPort}/");
        var admin = AdminCertificate = pki.IssueClient("admin", "hull-e2e-admin", "system:masters");
        AdminKubeconfig = Kubeconfig.Write(Path.Combine(dir, "admin.kubeconfig"), Server, pki, admin, "hull-e2e-admin");
        Api = new KubeApi(Server, pki, admin);
    }

    public string Dir { get; }
    /// <summary>etcd's data directory (on /dev/shm).</summary>
    public string EtcdDir { get; }
    public ClusterPki Pki { get; }
    public Uri Server { get; }
    /// <summary>A kubeconfig for a cluster admin (group system:masters).</summary>
    public string AdminKubeconfig { get; }
    /// <summary>The admin's client certificate (for .NET clients such as ClientWebSocket).</summary>
    public PemPair AdminCertificate { get; }
    /// <summary>The API as the admin.</summary>
    public KubeApi Api { get; }
    public DaemonProcess ApiServer => _processes.Single(p => p.Name == "kube-apiserver");
    public IReadOnlyList<DaemonProcess> Processes => _processes;

    public static async Task<KubeCluster> StartAsync(KubeClusterOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new KubeClusterOptions();
        var dir = Directory.CreateTempSubdirectory("hull-kube-").FullName;
        var etcdDir = Directory.CreateTempSubdirectory("hull-kube-etcd-").FullName;
        if (Directory.Exists("/dev/shm"))
        {
            Directory.Delete(etcdDir);
            etcdDir = Path.Combine("/dev/shm", Path.GetFileName(dir) + "-etcd");
            Directory.CreateDirectory(etcdDir);
        }
        var pki = ClusterPki.Create(Path.Combine(dir, "pki"));
        var cluster = new KubeCluster(dir, etcdDir, pki, RegistryProcess.FreePort());
        try
        {
            await cluster.StartEtcdAndApiServerAsync(cancellationToken);
            if (options.Controllers) await cluster.StartControllersAsync(cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task StartEtcdAndApiServerAsync(CancellationToken cancellationToken)
    {
        int clientPort = RegistryProcess.FreePort(), peerPort = RegistryProcess.FreePort();
        var etcd = Start("etcd", KubeTools.Etcd, [
            "--name", "hull-e2e", "--data-dir", Path.Combine(EtcdDir, "data"),
            "--listen-client-urls", $"http://127.0.0.1:{clientPort}", "--advertise-client-urls", $"http://127.0.0.1:{clientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{peerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peerPort}",
            "--initial-cluster", $"hull-e2e=http://127.0.0.1:{peerPort}", "--initial-cluster-state", "new",
            "--log-level", "warn", "--logger", "zap", "--snapshot-count", "10000", "--quota-backend-bytes", $"{512L << 20}"]);
        using (var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(2) })
            await etcd.WaitUntilAsync(async () => (await plain.GetStringAsync($"http://127.0.0.1:{clientPort}/health", cancellationToken)).Contains("true"),
                StartTimeout, "etcd healthy");

        var serving = Pki.IssueServing("apiserver", ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"], [IPAddress.Loopback, IPAddress.Parse("10.92.0.1")]);
        var kubeletClient = Pki.IssueClient("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters");
        var apiServer = Start("kube-apiserver", KubeTools.ApiServer, [
            $"--etcd-servers=http://127.0.0.1:{clientPort}",
            "--bind-address=127.0.0.1", $"--secure-port={Server.Port}", "--advertise-address=127.0.0.1",
            // The `kubernetes` Service's endpoints would be 127.0.0.1, which the API refuses; nothing routes Services here anyway.
            "--endpoint-reconciler-type=none",
            $"--cert-dir={Path.Combine(Dir, "apiserver")}",
            $"--tls-cert-file={serving.CertificatePath}", $"--tls-private-key-file={serving.KeyPath}",
            $"--client-ca-file={Pki.CaPath}",
            $"--service-account-key-file={Pki.ServiceAccountPublicKeyPath}",
            $"--service-account-signing-key-file={Pki.ServiceAccountKeyPath}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            $"--service-cluster-ip-range={ServiceCidr}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
            $"--kubelet-client-certificate={kubeletClient.CertificatePath}", $"--kubelet-client-key={kubeletClient.KeyPath}",
            $"--kubelet-certificate-authority={Pki.CaPath}", "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false", "--enable-priority-and-fairness=false", "--event-ttl=1h", "--v=1"]);
        await apiServer.WaitUntilAsync(async () => (await Api.GetTextAsync("readyz", cancellationToken)).Status == HttpStatusCode.OK,
            StartTimeout, "/readyz ok");
    }

    /// <summary>Starts kube-scheduler and kube-controller-manager (see <see cref="KubeClusterOptions.Controllers"/>).</summary>
    public async Task StartControllersAsync(CancellationToken cancellationToken = default)
    {
        Start("kube-scheduler", KubeTools.Scheduler, [$"--kubeconfig={AdminKubeconfig}", "--leader-elect=false", "--secure-port=0", "--v=1"]);
        var controllerManager = Start("kube-controller-manager", KubeTools.ControllerManager, [
            $"--kubeconfig={AdminKubeconfig}", "--leader-elect=false", "--secure-port=0",
            // Only what Deployments, DaemonSets, service accounts, namespace deletion and node taints (nodelifecycle removes the
            // not-ready taint a new node registers with) need: less load on a shared machine.
            "--controllers=deployment,replicaset,daemonset,serviceaccount,serviceaccount-token,root-ca-cert-publisher,namespace,garbagecollector,podgc,nodelifecycle",
            $"--root-ca-file={Pki.CaPath}", $"--service-account-private-key-file={Pki.ServiceAccountKeyPath}",
            "--kube-api-qps=100", "--kube-api-burst=200", "--concurrent-deployment-syncs=5", "--concurrent-replicaset-syncs=5", "--v=1"]);
        await controllerManager.WaitUntilAsync(async () => await Api.GetAsync("api/v1/namespaces/default/serviceaccounts/default", cancellationToken) is not null,
            StartTimeout, "the default service account exists");
    }

    private DaemonProcess Start(string name, string file, IEnumerable<string> args)
    {
        var process = DaemonProcess.Start(name, file, args, Path.Combine(Dir, name + ".log"));
        _processes.Add(process);
        return process;
    }

    /// <summary>
    /// A user with a client certificate from the cluster CA and a kubeconfig for it (a node: <c>system:node:NAME</c> in
    /// group <c>system:nodes</c>); <see cref="KubeUser.Api"/> calls the API as that user.
    /// </summary>
    public KubeUser AddUser(string name, string user, params string[] groups)
    {
        var certificate = Pki.IssueClient(name, user, groups);
        return new KubeUser(this, user, Kubeconfig.Write(Path.Combine(Dir, name + ".kubeconfig"), Server, Pki, certificate, user), certificate);
    }

    /// <summary>Runs kubectl as the admin (or with <paramref name="kubeconfig"/>).</summary>
    public Task<ProcessResult> KubectlAsync(IEnumerable<string> args, TimeSpan? timeout = null, string? kubeconfig = null) =>
        ProcessRunner.RunAsync(KubeTools.Kubectl, args.Prepend($"--kubeconfig={kubeconfig ?? AdminKubeconfig}"), timeout ?? TimeSpan.FromSeconds(60));

    /// <summary>Runs kubectl as the admin and returns its stdout; a non-zero exit fails with the output.</summary>
    public async Task<string> KubectlOkAsync(params string[] args)
    {
        var result = await KubectlAsync(args);
        if (result.ExitCode != 0) throw new InvalidOperationException($"kubectl {string.Join(' ', args)} failed: {result}");
        return result.Stdout;
    }

    /// <summary>Writes <paramref name="yaml"/> to a file and runs <c>kubectl apply -f</c> on it.</summary>
    public async Task ApplyAsync(string yaml)
    {
        var path = Path.Combine(Dir, $"manifest-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, yaml);
        await KubectlOkAsync("apply", "-f", path);
    }

    /// <summary>A kubectl that keeps running (logs -f, port-forward, exec -it); the caller disposes it, which kills it.</summary>
    public KubectlSession StartKubectl(params string[] args) => KubectlSession.Start(AdminKubeconfig, args);

    public async Task<JsonNode> GetAsync(string path) =>
        await Api.GetAsync(path) ?? throw new InvalidOperationException($"{path} does not exist");

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Api.Dispose();
        // Clients first, etcd last, so nothing logs connection errors for long.
        for (int i = _processes.Count - 1; i >= 0; i--) await _processes[i].DisposeAsync();
        var left = HulldProcess.ProcessesMentioning(Dir).Concat(HulldProcess.ProcessesMentioning(EtcdDir)).ToList();
        try { Directory.Delete(EtcdDir, recursive: true); } catch (DirectoryNotFoundException) { }
        if (Environment.GetEnvironmentVariable("HULL_NODE_KEEP_LOGS") is not { Length: > 0 }) Directory.Delete(Dir, recursive: true);
        Assert.True(left.Count == 0, "processes of the cluster left: " + string.Join(", ", left));
    }
}

/// <summary>A user of the cluster: its kubeconfig file and client certificate.</summary>
public sealed record KubeUser(KubeCluster Cluster, string Name, string Kubeconfig, PemPair Certificate)
{
    /// <summary>A JSON client of the API server as this user (dispose it).</summary>
    public KubeApi Api() => new(Cluster.Server, Cluster.Pki, Certificate);

    /// <summary>kubectl as this user.</summary>
    public Task<ProcessResult> KubectlAsync(params string[] args) => Cluster.KubectlAsync(args, kubeconfig: Kubeconfig);
}

/// <summary>A long-running kubectl (logs -f, port-forward, exec -it): its output as it arrives; disposing kills it by pid.</summary>
public sealed class KubectlSession : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _stdout = new(), _stderr = new();
    private readonly Task _pumps;

    private KubectlSession(Process process)
    {
        _process = process;
        _pumps = Task.WhenAll(Pump(process.StandardOutput, _stdout), Pump(process.StandardError, _stderr));
    }

    public static KubectlSession Start(string kubeconfig, IEnumerable<string> args) =>
        StartProcess(KubeTools.Kubectl, args.Prepend($"--kubeconfig={kubeconfig}"));

    /// <summary>
    /// kubectl under a pseudo-terminal (util-linux <c>script</c>), so <c>-t</c> gets a real TTY as at a shell prompt;
    /// what is written to <see cref="Stdin"/> is typed into it, and the exit code is kubectl's (<c>script -e</c>).
    /// </summary>
    public static KubectlSession StartUnderPty(string kubeconfig, IEnumerable<string> args)
    {
        static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        var command = string.Join(' ', args.Prepend($"--kubeconfig={kubeconfig}").Prepend(KubeTools.Kubectl).Select(Quote));
        return StartProcess("script", ["-q", "-e", "-c", command, "/dev/null"]);
    }

    private static KubectlSession StartProcess(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        return new KubectlSession(Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}"));
    }

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public StreamWriter Stdin => _process.StandardInput;

    private static async Task Pump(StreamReader reader, System.Text.StringBuilder into)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
            lock (into) into.Append(buffer, 0, n);
    }

    /// <summary>Waits until stdout satisfies <paramref name="condition"/>; fails with both streams otherwise.</summary>
    public async Task<string> WaitForOutputAsync(Func<string, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var output = Stdout;
            if (condition(output)) return output;
            if (_process.HasExited)
            {
                await _pumps;
                if (condition(Stdout)) return Stdout;
                throw new InvalidOperationException($"kubectl exited with {_process.ExitCode} before {what}\nstdout: {Stdout}\nstderr: {Stderr}");
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"no {what} from kubectl within {timeout}\nstdout: {Stdout}\nstderr: {Stderr}");
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        await _pumps;
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        await Task.WhenAny(_pumps, Task.Delay(TimeSpan.FromSeconds(5)));
        _process.Dispose();
    }
}
