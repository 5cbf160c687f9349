using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Hull.Core.Processes;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tasks;

namespace Hull.Runtime.Tests.Fixtures;

/// <summary>A bundle the environment wrote: its container id, directories and cgroup.</summary>
public sealed record TestBundle(string Id, string BundlePath, string LogPath, string CgroupsPath)
{
    public TaskCreateRequest Request => new(Id, BundlePath, LogPath);
}

/// <summary>
/// A private state directory, a busybox rootfs and OCI bundles for real containers, and complete cleanup: every
/// container is deleted with runc, every conmon killed, every cgroup removed and the directory tree deleted — also
/// when a test fails half way.
/// </summary>
public sealed class TaskTestEnvironment : IAsyncDisposable
{
    private static readonly string[] Applets =
        ["sh", "echo", "cat", "sleep", "ls", "true", "false", "id", "env", "kill", "ps", "head", "tail", "yes", "seq", "test", "[", "touch", "dd"];

    private readonly List<TestBundle> _bundles = [];
    private readonly List<TaskManager> _managers = [];

    public TaskTestEnvironment()
    {
        Root = Path.Combine(Path.GetTempPath(), "hull-rt-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant());
        Directory.CreateDirectory(Root);
        Rootfs = Path.Combine(Root, "rootfs");
        BuildRootfs(Rootfs);
        Options = new TaskOptions
        {
            StateDirectory = Path.Combine(Root, "state"),
            RuntimePath = "runc",
            RuntimeRoot = Path.Combine(Root, "runc"),
            ConmonSyslog = false,
            CreateTimeout = TimeSpan.FromSeconds(30),
            RuntimeCommandTimeout = TimeSpan.FromSeconds(20),
            RunDetachedHelper = RunDetachedHelper,
        };
    }

    /// <summary>hull-run-detached, which the build puts next to the tests (cmd/HullHelpers.targets).</summary>
    public static string RunDetachedHelper { get; } = Path.Combine(AppContext.BaseDirectory, "hull-run-detached");

    public string Root { get; }
    public string Rootfs { get; }
    public TaskOptions Options { get; }

    /// <summary>A task manager on this state directory; several in a row simulate hulld restarts.</summary>
    public TaskManager NewManager(TaskOptions? options = null)
    {
        var manager = new TaskManager(options ?? Options);
        lock (_managers) _managers.Add(manager);
        return manager;
    }

    /// <summary>
    /// Writes a bundle whose config.json starts from <c>runc spec</c>: the shared rootfs, <paramref name="args"/>, no
    /// terminal, a cgroup of its own, and process.oomScoreAdj no lower than ours (nothing here may lower it; runc
    /// cannot even start the container if it tries).
    /// </summary>
    public async Task<TestBundle> BundleAsync(string[] args, Action<JsonObject>? edit = null)
    {
        var id = "t" + Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        var bundle = Path.Combine(Root, "bundles", id);
        Directory.CreateDirectory(bundle);
        var config = (await SpecTemplateAsync()).DeepClone().AsObject();
        config["root"] = new JsonObject { ["path"] = Rootfs, ["readonly"] = true };
        var process = config["process"]!.AsObject();
        process["args"] = new JsonArray(args.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray());
        process["terminal"] = false;
        process["oomScoreAdj"] = int.Parse(File.ReadAllText("/proc/self/oom_score_adj").Trim(), CultureInfo.InvariantCulture);
        config["hostname"] = id;
        var cgroupsPath = "/hull-test-" + id;
        config["linux"]!.AsObject()["cgroupsPath"] = cgroupsPath;
        edit?.Invoke(config);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), config.ToJsonString());
        var result = new TestBundle(id, bundle, Path.Combine(Root, "logs", id, "0.log"), cgroupsPath);
        lock (_bundles) _bundles.Add(result);
        return result;
    }

    /// <summary>Sets linux.resources.memory limit and swap (equal: no swap, so the limit really bites).</summary>
    public static Action<JsonObject> MemoryLimit(long bytes) => config =>
    {
        var linux = config["linux"]!.AsObject();
        var resources = linux["resources"]?.AsObject() ?? new JsonObject();
        resources["memory"] = new JsonObject { ["limit"] = bytes, ["swap"] = bytes };
        linux["resources"] = resources;
    };

    /// <summary>Creates and starts the bundle's container.</summary>
    public async Task<TaskInfo> RunAsync(TaskManager manager, TestBundle bundle)
    {
        var info = await manager.CreateAsync(bundle.Request);
        await manager.StartAsync(bundle.Id);
        return info;
    }

    /// <summary>
    /// A shell script in front of runc that appends its arguments to <paramref name="log"/>, one line per run: what
    /// conmon and the task manager ask the runtime to do.
    /// </summary>
    public string LoggingRuntime(string log)
    {
        var script = Path.Combine(Root, "runc-logged");
        File.WriteAllText(script, $"#!/bin/sh\necho \"$*\" >> '{log}'\nexec '{Prerequisites.Resolve("runc")}' \"$@\"\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return script;
    }

    /// <summary>Polls until <paramref name="condition"/> holds or fails the test after <paramref name="timeout"/>.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    private static JsonObject? s_template;
    private static readonly SemaphoreSlim TemplateLock = new(1, 1);

    private async Task<JsonObject> SpecTemplateAsync()
    {
        await TemplateLock.WaitAsync();
        try
        {
            if (s_template is not null) return s_template;
            var dir = Path.Combine(Root, "spec-template");
            Directory.CreateDirectory(dir);
            var outcome = await ProcessRunner.RunAsync(new ProcessSpec(Prerequisites.Resolve("runc")!, ["spec", "--bundle", dir]));
            Assert.True(outcome.ExitCode == 0, $"runc spec failed: {outcome.Stderr}");
            s_template = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "config.json")))!.AsObject();
            return s_template;
        }
        finally
        {
            TemplateLock.Release();
        }
    }

    private static void BuildRootfs(string rootfs)
    {
        foreach (var dir in new[] { "bin", "proc", "sys", "dev", "tmp", "etc" }) Directory.CreateDirectory(Path.Combine(rootfs, dir));
        File.Copy(Prerequisites.Busybox, Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in Applets) File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        File.WriteAllText(Path.Combine(rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
        File.WriteAllText(Path.Combine(rootfs, "etc", "group"), "root:x:0:\n");
    }

    public async ValueTask DisposeAsync()
    {
        lock (_managers)
            foreach (var manager in _managers) manager.Dispose();
        var runc = Prerequisites.Resolve("runc");
        List<TestBundle> bundles;
        lock (_bundles) bundles = [.. _bundles];
        var paths = new TaskPaths(Options.StateDirectory);
        foreach (var bundle in bundles)
        {
            if (runc is not null)
                await ProcessRunner.RunAsync(new ProcessSpec(runc, ["--root", Options.RuntimeRoot!, "delete", "--force", bundle.Id]));
            if (File.Exists(paths.ConmonPidFile(bundle.Id)) &&
                int.TryParse(File.ReadAllText(paths.ConmonPidFile(bundle.Id)).Trim(), out var conmon) &&
                ProcessInfo.TryRead(conmon) is { Command: "conmon" })
                Signals.TrySend(conmon, Signals.SIGKILL);
            try
            {
                await CgroupTree.RemoveAsync(CgroupPaths.ForCgroupsPath(bundle.CgroupsPath, CgroupLayout.Detect()), TimeSpan.FromSeconds(5));
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"cleanup of cgroup {bundle.CgroupsPath}: {e.Message}");
            }
        }
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"cleanup of {Root}: {e.Message}");
        }
    }
}
