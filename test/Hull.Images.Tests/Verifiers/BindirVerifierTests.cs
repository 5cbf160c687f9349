using System.Diagnostics;
using System.Text.Json;
using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Verifiers;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Tests.Verifiers;

public sealed class BindirVerifierTests : IDisposable
{
    private const string Image = "registry.example.com/team/app:1.0";
    private const string Digest = "sha256:98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";
    private static readonly Descriptor Manifest = new(MediaTypes.OciManifest, Digest, 1234);

    private readonly VerifierBinDir _dir = new();
    private readonly RecordingLogger _logger = new();

    public void Dispose() => _dir.Dispose();

    private BindirVerifier Verifier(int maxVerifiers = 10, TimeSpan? timeout = null, string? binDir = null) =>
        new(new VerifierOptions
        {
            BinDir = binDir ?? _dir.BinDir,
            MaxVerifiers = maxVerifiers,
            PerVerifierTimeout = timeout ?? TimeSpan.FromSeconds(10),
        }, _logger);

    private Task<Judgement> Verify(BindirVerifier verifier, Descriptor? manifest = null, CancellationToken ct = default) =>
        verifier.VerifyAsync(Image, manifest ?? Manifest, ct);

    [Fact]
    public async Task Verifier_exiting_zero_allows_the_image_with_its_stdout_as_reason()
    {
        _dir.Add("allow", "echo '  signature ok  '\nexit 0");

        var judgement = await Verify(Verifier());

        Assert.True(judgement.Ok);
        Assert.Equal("allow => signature ok", judgement.Reason);
        Assert.Null(judgement.Verifier);
        judgement.EnsureAllowed(Image); // does not throw
    }

    [Fact]
    public async Task Verifier_exiting_non_zero_denies_naming_the_verifier_and_its_stdout()
    {
        _dir.Add("cosign", "echo 'no signatures found'\necho 'debug noise' >&2\nexit 3");

        var judgement = await Verify(Verifier());

        Assert.False(judgement.Ok);
        Assert.Equal("verifier cosign rejected image (exit code 3): no signatures found", judgement.Reason);
        Assert.Equal("cosign", judgement.Verifier);
        Assert.Equal("exit code 3: no signatures found", judgement.VerifierReason);
        Assert.Contains(_logger.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("debug noise"));
    }

    [Fact]
    public async Task A_rejection_fails_the_pull_with_a_FailedPrecondition_naming_image_verifier_and_reason()
    {
        _dir.Add("policy", "echo 'registry not allowed'\nexit 1");

        var e = await Assert.ThrowsAsync<VerificationFailedException>(() => Verifier().EnsureAllowedAsync(Image, Manifest, default));

        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.IsAssignableFrom<HullException>(e);
        Assert.Equal($"image \"{Image}\" rejected by verifier \"policy\": exit code 1: registry not allowed", e.Message);
        Assert.Equal("policy", e.Verifier);
        Assert.Equal(Image, e.ImageName);
    }

    [Fact]
    public async Task EnsureAllowedAsync_returns_the_judgement_when_allowed()
    {
        _dir.Add("ok", "echo fine");
        var judgement = await Verifier().EnsureAllowedAsync(Image, Manifest, default);
        Assert.True(judgement.Ok);
    }

    [Fact]
    public async Task Rejection_reason_is_capped_at_32_KiB_of_stdout_and_marked_truncated()
    {
        _dir.Add("chatty", "head -c 100000 /dev/zero | tr '\\0' x\nexit 1");

        var judgement = await Verify(Verifier());

        Assert.False(judgement.Ok);
        Assert.Equal($"verifier chatty rejected image (exit code 1): {new string('x', 32 * 1024)}(stdout truncated)", judgement.Reason);
    }

    [Fact]
    public async Task Stdout_of_exactly_32_KiB_is_not_marked_truncated()
    {
        _dir.Add("exact", "head -c 32768 /dev/zero | tr '\\0' y");

        var judgement = await Verify(Verifier());

        Assert.True(judgement.Ok);
        Assert.Equal("exact => " + new string('y', 32 * 1024), judgement.Reason);
    }

    [Fact]
    public async Task Verifier_gets_name_digest_and_media_type_args_and_the_manifest_descriptor_on_stdin()
    {
        string args = Path.Join(_dir.Scratch, "args");
        string stdin = Path.Join(_dir.Scratch, "stdin");
        _dir.Add("dump", $"for a in \"$@\"; do printf '%s\\n' \"$a\" >> '{args}'; done\ncat > '{stdin}'\necho dumped");
        var manifest = new Descriptor(MediaTypes.OciManifest, Digest, 1234)
        {
            Annotations = new Dictionary<string, string> { ["org.example/b"] = "2", ["org.example/a"] = "1 <&>" },
            Platform = new Platform("linux", "arm64", "v8"),
        };

        var judgement = await Verify(Verifier(), manifest);

        Assert.True(judgement.Ok, judgement.Reason);
        Assert.Equal(["-name", Image, "-digest", Digest, "-stdin-media-type", "application/vnd.oci.descriptor.v1+json"],
            File.ReadAllLines(args));
        string json = File.ReadAllText(stdin);
        Assert.Equal(
            "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"digest\":\"{Digest}\",\"size\":1234," +
            "\"annotations\":{\"org.example/a\":\"1 \\u003c\\u0026\\u003e\",\"org.example/b\":\"2\"}," +
            "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}\n",
            json);

        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(MediaTypes.OciManifest, root.GetProperty("mediaType").GetString());
        Assert.Equal(Digest, root.GetProperty("digest").GetString());
        Assert.Equal(1234, root.GetProperty("size").GetInt64());
        Assert.Equal("1 <&>", root.GetProperty("annotations").GetProperty("org.example/a").GetString());
        var platform = root.GetProperty("platform");
        Assert.Equal("arm64", platform.GetProperty("architecture").GetString());
        Assert.Equal("linux", platform.GetProperty("os").GetString());
        Assert.Equal("v8", platform.GetProperty("variant").GetString());
    }

    [Fact]
    public async Task Stdin_matches_containerds_own_input_output_test()
    {
        // pkg/imageverifier/bindir/bindir_test.go, "proper input/output management".
        string stdin = Path.Join(_dir.Scratch, "stdin");
        _dir.Add("verifier-0", $"cat > '{stdin}'\nprintf 'Reason A line 1\\nReason A line 2\\n'");
        var manifest = new Descriptor(MediaTypes.DockerManifestList, Digest, 2048)
        {
            Annotations = new Dictionary<string, string> { ["a"] = "b" },
        };

        var judgement = await Verifier(maxVerifiers: -1, timeout: TimeSpan.FromSeconds(5)).VerifyAsync("registry.example.com/image:abc", manifest, default);

        Assert.True(judgement.Ok);
        Assert.Equal("verifier-0 => Reason A line 1\nReason A line 2", judgement.Reason);
        Assert.Equal(
            "{\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\"," +
            $"\"digest\":\"{Digest}\",\"size\":2048,\"annotations\":{{\"a\":\"b\"}}}}",
            File.ReadAllText(stdin).TrimEnd());
    }

    [Fact]
    public async Task Verifier_outliving_the_timeout_is_killed_with_its_children_and_denies()
    {
        string childPid = Path.Join(_dir.Scratch, "child.pid");
        _dir.Add("a-slow", $"sleep 60 &\necho $! > '{childPid}'\nwait");
        _dir.AddLogging("b-never");
        var sw = Stopwatch.StartNew();

        var judgement = await Verify(Verifier(timeout: TimeSpan.FromMilliseconds(500)));

        sw.Stop();
        Assert.False(judgement.Ok);
        Assert.Equal("a-slow", judgement.Verifier);
        Assert.Equal("did not finish within 500ms and was killed", judgement.VerifierReason);
        Assert.StartsWith("failed to call verifier a-slow (runtime ", judgement.Reason);
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        Assert.Empty(_dir.Runs());

        int pid = int.Parse(File.ReadAllText(childPid).Trim());
        await AssertGoneAsync(pid);
    }

    [Fact]
    public async Task Cancellation_by_the_caller_propagates_and_kills_the_verifier()
    {
        string pidFile = Path.Join(_dir.Scratch, "pid");
        _dir.Add("hang", $"echo $$ > '{pidFile}'\nexec sleep 60");
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Verify(Verifier(), ct: cts.Token));

        await AssertGoneAsync(int.Parse(File.ReadAllText(pidFile).Trim()));
    }

    [Fact]
    public async Task Verifier_killed_by_a_signal_denies()
    {
        _dir.Add("crash", "echo about to crash\nkill -SEGV $$");

        var judgement = await Verify(Verifier());

        Assert.False(judgement.Ok);
        Assert.Equal("crash", judgement.Verifier);
        Assert.Equal("verifier crash rejected image (exit code 139): about to crash", judgement.Reason);
    }

    [Fact]
    public async Task Non_executable_file_is_not_skipped_it_blocks_the_pull_as_in_containerd()
    {
        _dir.Add("a-notes", "echo not a verifier", executable: false);
        _dir.AddLogging("b-allow");

        var judgement = await Verify(Verifier());

        Assert.False(judgement.Ok);
        Assert.Equal("a-notes", judgement.Verifier);
        Assert.StartsWith("could not be run: ", judgement.VerifierReason);
        Assert.StartsWith("failed to call verifier a-notes (runtime ", judgement.Reason);
        Assert.Empty(_dir.Runs());
    }

    [Fact]
    public async Task Executable_that_is_not_a_program_blocks_the_pull()
    {
        // containerd's "with exec failure" case: an executable file holding "BAD".
        string bad = Path.Join(_dir.BinDir, "bad.sh");
        File.WriteAllText(bad, "BAD");
        File.SetUnixFileMode(bad, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var judgement = await Verify(Verifier(maxVerifiers: -1));

        Assert.False(judgement.Ok);
        Assert.Equal("bad.sh", judgement.Verifier);
    }

    [Fact]
    public async Task Subdirectory_in_bin_dir_blocks_the_pull()
    {
        Directory.CreateDirectory(Path.Join(_dir.BinDir, "subdir"));

        var judgement = await Verify(Verifier());

        Assert.False(judgement.Ok);
        Assert.Equal("subdir", judgement.Verifier);
    }

    [Fact]
    public async Task Verifiers_run_in_lexical_order_and_the_first_rejection_stops_the_rest()
    {
        _dir.AddLogging("b-reject", exitCode: 1, reason: "B says no");
        _dir.AddLogging("a-allow");
        _dir.AddLogging("10-allow");
        _dir.AddLogging("9-allow");
        _dir.AddLogging("Z-allow");
        _dir.AddLogging("c-never");

        var judgement = await Verify(Verifier());

        Assert.False(judgement.Ok);
        Assert.Equal("verifier b-reject rejected image (exit code 1): B says no", judgement.Reason);
        Assert.Equal(["10-allow", "9-allow", "Z-allow", "a-allow", "b-reject"], _dir.Runs());
    }

    [Fact]
    public async Task All_allowing_verifiers_combine_their_reasons()
    {
        _dir.AddLogging("verifier-0", reason: "Reason A");
        _dir.AddLogging("verifier-1", reason: "Reason B");
        _dir.AddLogging("verifier-2", reason: "Reason C");

        var judgement = await Verify(Verifier(maxVerifiers: 3));

        Assert.True(judgement.Ok);
        Assert.Equal("verifier-0 => Reason A, verifier-1 => Reason B, verifier-2 => Reason C", judgement.Reason);
    }

    [Fact]
    public async Task Missing_bin_dir_allows_with_no_verifiers()
    {
        string missing = Path.Join(_dir.Scratch, "does-not-exist");

        var judgement = await Verify(Verifier(binDir: missing));

        Assert.True(judgement.Ok);
        Assert.Equal($"image verifier directory {missing} does not exist", judgement.Reason);
    }

    [Fact]
    public async Task Empty_bin_dir_allows_with_no_verifiers()
    {
        var judgement = await Verify(Verifier());

        Assert.True(judgement.Ok);
        Assert.Equal($"no image verifier binaries found in {_dir.BinDir}", judgement.Reason);
    }

    [Fact]
    public async Task Bin_dir_that_is_a_file_is_an_error()
    {
        string file = Path.Join(_dir.Scratch, "file");
        File.WriteAllText(file, "");

        var e = await Assert.ThrowsAsync<HullException>(() => Verify(Verifier(binDir: file)));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
    }

    [Fact]
    public async Task Max_verifiers_zero_runs_none()
    {
        _dir.AddLogging("reject", exitCode: 1);

        var judgement = await Verify(Verifier(maxVerifiers: 0));

        Assert.True(judgement.Ok);
        Assert.Equal("", judgement.Reason);
        Assert.Empty(_dir.Runs());
    }

    [Fact]
    public async Task More_entries_than_max_verifiers_runs_only_the_first_n_and_warns()
    {
        for (int i = 0; i < 10; i++) _dir.AddLogging($"v{i:00}");
        _dir.AddLogging("v10-reject", exitCode: 1); // the 11th entry: skipped with the default max of 10

        var judgement = await Verify(Verifier());

        Assert.True(judgement.Ok);
        Assert.Equal(10, _dir.Runs().Count);
        Assert.DoesNotContain("v10-reject", _dir.Runs());
        Assert.Contains(_logger.Entries, e => e.Level == LogLevel.Warning &&
            e.Message.Contains("has 11 entries, more than configured max of 10 verifiers"));
    }

    [Fact]
    public async Task Negative_max_verifiers_runs_all()
    {
        for (int i = 0; i < 12; i++) _dir.AddLogging($"v{i:00}");

        var judgement = await Verify(Verifier(maxVerifiers: -1));

        Assert.True(judgement.Ok);
        Assert.Equal(12, _dir.Runs().Count);
        Assert.DoesNotContain(_logger.Entries, e => e.Level == LogLevel.Warning);
    }

    [Fact]
    public async Task Descriptor_larger_than_a_pipe_buffer_is_fine_when_the_verifier_ignores_stdin()
    {
        // containerd's "descriptor larger than linux pipe buffer, verifier doesn't read stdin".
        _dir.Add("ignores-stdin", "echo Reason A");
        var manifest = Manifest with { Annotations = new Dictionary<string, string> { ["large_payload"] = new string('0', 128 * 1024) } };

        var judgement = await Verify(Verifier(maxVerifiers: 1, timeout: TimeSpan.FromSeconds(5)), manifest);

        Assert.True(judgement.Ok);
        Assert.Equal("ignores-stdin => Reason A", judgement.Reason);
    }

    private static async Task AssertGoneAsync(int pid)
    {
        // Killed processes are reaped by init (or stay zombies when PID 1 does not reap, as containerd's test allows).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            string stat = Path.Join("/proc", pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "stat");
            string? state = null;
            try { state = File.ReadAllText(stat).Split(") ")[1][..1]; }
            catch (IOException) { }
            if (state is null or "Z" or "X") return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"process {pid} still running (state {state})");
            await Task.Delay(50);
        }
    }
}
