using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Tests.Verifiers;

/// <summary>A temporary <c>bin_dir</c> holding real shell-script verifiers, plus a scratch directory for their output.</summary>
public sealed class VerifierBinDir : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("hull-verifier-tests-").FullName;

    public VerifierBinDir()
    {
        Directory.CreateDirectory(BinDir);
        Directory.CreateDirectory(Scratch);
    }

    public string BinDir => Path.Join(_root, "bin");
    public string Scratch => Path.Join(_root, "scratch");
    /// <summary>Every verifier written with <see cref="AddLogging"/> appends its name here when it runs.</summary>
    public string RunLog => Path.Join(Scratch, "runs.log");

    /// <summary>Writes an executable <c>/bin/sh</c> script named <paramref name="name"/> into the bin_dir.</summary>
    public string Add(string name, string body, bool executable = true)
    {
        string path = Path.Join(BinDir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, executable
            ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead |
              UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
            : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }

    /// <summary>A verifier that records that it ran, prints <paramref name="reason"/> and exits with <paramref name="exitCode"/>.</summary>
    public string AddLogging(string name, int exitCode = 0, string? reason = null) =>
        Add(name, $"echo '{name}' >> '{RunLog}'\necho '{reason ?? "reason " + name}'\nexit {exitCode}");

    public IReadOnlyList<string> Runs() => File.Exists(RunLog) ? File.ReadAllLines(RunLog) : [];

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}

/// <summary>An <see cref="ILogger"/> that keeps what was logged.</summary>
public sealed class RecordingLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
        Func<TState, Exception?, string> formatter) => Entries.Enqueue((logLevel, formatter(state, exception)));
}
