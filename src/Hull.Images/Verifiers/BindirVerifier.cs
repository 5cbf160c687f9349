using System.Globalization;
using System.Text;
using Hull.Core;
using Hull.Core.Processes;
using Hull.Images.Oci;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Verifiers;

/// <summary>
/// The <c>io.containerd.image-verifier.v1.bindir</c> plugin, as containerd 2.0 implements it
/// (<c>pkg/imageverifier/bindir/bindir.go</c>, <c>docs/image-verification.md</c>):
/// <list type="bullet">
/// <item>every entry of <c>bin_dir</c>, sorted by name, is executed in turn with
///   <c>-name &lt;image&gt; -digest &lt;manifest digest&gt; -stdin-media-type application/vnd.oci.descriptor.v1+json</c>
///   and the manifest's OCI descriptor as JSON on stdin; no entry is filtered out, so a file that cannot be executed
///   (or a directory) blocks the pull rather than being skipped;</item>
/// <item>the first verifier that exits non-zero rejects the image and the rest are not run; its stdout
///   (trimmed, at most 32 KiB) is the reason; stderr is logged at debug level;</item>
/// <item>a verifier that outlives <c>per_verifier_timeout</c> is killed with all its children, and one that cannot be
///   started blocks the pull (containerd returns an error there; Hull returns a rejecting judgement);</item>
/// <item>a missing or empty <c>bin_dir</c> allows every image;</item>
/// <item><c>max_verifiers</c> &gt;= 0 runs only the first that many entries (with a warning); &lt; 0 means no limit.</item>
/// </list>
/// Verifiers run sequentially; no lock is held while one runs, so pulls verify concurrently.
/// </summary>
public sealed class BindirVerifier : IImageVerifier
{
    public const string PluginType = "io.containerd.image-verifier.v1";
    public const string PluginId = "bindir";
    /// <summary>containerd reads at most this much of a verifier's stdout (and logs at most this much of its stderr).</summary>
    public const int OutputLimitBytes = 1 << 15;

    private readonly VerifierOptions _config;
    private readonly ILogger _logger;

    public BindirVerifier(VerifierOptions config, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(logger);
        _config = config;
        _logger = logger;
    }

    public async Task<Judgement> VerifyAsync(string imageName, Descriptor manifest, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(imageName);
        ArgumentNullException.ThrowIfNull(manifest);
        string dir = _config.BinDir;

        var entries = ListEntries(dir);
        if (entries is null) return new Judgement(true, $"image verifier directory {dir} does not exist");
        if (entries.Count == 0) return new Judgement(true, $"no image verifier binaries found in {dir}");

        byte[] stdin = DescriptorJson.Serialize(manifest);
        var reason = new StringBuilder();
        for (int i = 0; i < entries.Count; i++)
        {
            if (_config.MaxVerifiers >= 0 && i + 1 > _config.MaxVerifiers)
            {
                _logger.LogWarning(
                    "image verifiers are being skipped since directory {BinDir} has {Entries} entries, more than configured max of {MaxVerifiers} verifiers",
                    dir, entries.Count, _config.MaxVerifiers);
                break;
            }

            string bin = entries[i];
            var run = await RunVerifierAsync(dir, bin, imageName, manifest.Digest, stdin, ct).ConfigureAwait(false);
            if (!run.Ok)
            {
                _logger.LogWarning("image verifier {Verifier} rejected image {Image} ({Digest}): {Reason}",
                    bin, imageName, manifest.Digest, run.Reason);
                return run;
            }
            _logger.LogDebug("image verifier {Verifier} allowed image {Image} ({Digest}): {Reason}",
                bin, imageName, manifest.Digest, run.Reason);
            if (i > 0) reason.Append(", ");
            reason.Append(bin).Append(" => ").Append(run.Reason);
        }
        return new Judgement(true, reason.ToString());
    }

    /// <summary>The names in <paramref name="dir"/>, sorted as Go's <c>os.ReadDir</c> sorts them; null when it does not exist.</summary>
    private static List<string>? ListEntries(string dir)
    {
        if (string.IsNullOrEmpty(dir)) return null;
        try
        {
            if (File.Exists(dir))
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"failed to list image verifier directory {dir}: not a directory");
            var names = new List<string>();
            foreach (string path in Directory.EnumerateFileSystemEntries(dir))
                names.Add(Path.GetFileName(path));
            names.Sort(StringComparer.Ordinal);
            return names;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"failed to list image verifier directory {dir}: {e.Message}", e);
        }
    }

    /// <summary>Runs one verifier; Ok means it exited 0, and Reason is then its (trimmed, capped) stdout.</summary>
    private async Task<Judgement> RunVerifierAsync(string dir, string bin, string imageName, string digest, byte[] stdin,
        CancellationToken ct)
    {
        var timeout = _config.PerVerifierTimeout > TimeSpan.Zero ? _config.PerVerifierTimeout : TimeSpan.Zero;
        var spec = new ProcessSpec(Path.Join(dir, bin),
            ["-name", imageName, "-digest", digest, "-stdin-media-type", DescriptorJson.MediaType])
        {
            Stdin = stdin,
            Timeout = timeout,
            // One byte more than containerd keeps, to tell "exactly 32 KiB" from "truncated".
            MaxOutputBytes = OutputLimitBytes + 1,
        };

        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        ProcessOutcome outcome;
        try
        {
            outcome = await ProcessRunner.RunAsync(spec, ct).ConfigureAwait(false);
        }
        catch (HullException e)
        {
            // Timed out (the runner killed the process tree) or could not be started (not executable, bad interpreter, ...).
            string why = e.Kind == ErrorKind.DeadlineExceeded
                ? $"did not finish within {FormatDuration(timeout)} and was killed"
                : $"could not be run: {e.Message}";
            var runtime = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            return new Judgement(false, $"failed to call verifier {bin} (runtime {FormatDuration(runtime)}): {why}")
            {
                Verifier = bin,
                VerifierReason = why,
            };
        }

        LogStderr(bin, outcome.Stderr);
        string output = StdoutReason(outcome.Stdout);
        if (outcome.ExitCode == 0) return new Judgement(true, output);

        return new Judgement(false, $"verifier {bin} rejected image (exit code {outcome.ExitCode}): {output}")
        {
            Verifier = bin,
            VerifierReason = output.Length == 0 ? $"exit code {outcome.ExitCode}" : $"exit code {outcome.ExitCode}: {output}",
        };
    }

    /// <summary>containerd: the first 32 KiB of stdout, whitespace-trimmed, with "(stdout truncated)" when there was more.</summary>
    internal static string StdoutReason(byte[] stdout)
    {
        bool truncated = stdout.Length > OutputLimitBytes;
        string text = Encoding.UTF8.GetString(stdout, 0, Math.Min(stdout.Length, OutputLimitBytes)).Trim();
        return truncated ? text + "(stdout truncated)" : text;
    }

    private void LogStderr(string bin, string stderr)
    {
        if (stderr.Length == 0 || !_logger.IsEnabled(LogLevel.Debug)) return;
        bool truncated = Encoding.UTF8.GetByteCount(stderr) >= OutputLimitBytes;
        if (truncated) stderr = TruncateUtf8(stderr, OutputLimitBytes);
        foreach (string line in stderr.Split('\n'))
            _logger.LogDebug("image verifier {Verifier} stderr: {Line}", bin, line.TrimEnd('\r'));
        if (truncated) _logger.LogDebug("image verifier {Verifier} stderr: (previous logs may be truncated)", bin);
    }

    private static string TruncateUtf8(string s, int maxBytes)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        return bytes.Length <= maxBytes ? s : Encoding.UTF8.GetString(bytes, 0, maxBytes);
    }

    /// <summary>Roughly Go's <c>time.Duration.String</c>: 500ms, 10s, 1.5s, 2m0s.</summary>
    internal static string FormatDuration(TimeSpan d)
    {
        if (d < TimeSpan.FromSeconds(1)) return d.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture) + "ms";
        if (d < TimeSpan.FromMinutes(1)) return d.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";
        var minutes = (long)d.TotalMinutes;
        return minutes.ToString(CultureInfo.InvariantCulture) + "m"
            + (d - TimeSpan.FromMinutes(minutes)).TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";
    }
}

/// <summary>How the bindir verifier runs (<c>[plugins.'io.containerd.image-verifier.v1.bindir']</c>, bound by hulld).</summary>
public sealed record VerifierOptions
{
    /// <summary>Directory of verifier executables; a missing directory means no verifiers.</summary>
    public required string BinDir { get; init; }
    /// <summary>At most this many verifiers run (the rest are an error, as in containerd); negative means no limit.</summary>
    public required int MaxVerifiers { get; init; }
    /// <summary>Time limit of one verifier run; zero means none.</summary>
    public required TimeSpan PerVerifierTimeout { get; init; }
}
