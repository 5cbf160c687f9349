namespace Hull.Linux;

/// <summary>
/// The one way Hull writes a file that must survive a crash: a temporary file next to the target, written and
/// fsynced, renamed over the target, then the directory fsynced so the rename itself is durable. A crash at any
/// point leaves either the old file or the whole new one, never a torn one; a failed write leaves no temporary file.
/// </summary>
public static class AtomicFile
{
    /// <summary>Owner read/write only: the default, since most of what Hull persists is nobody else's business.</summary>
    public const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Readable by everyone (files a container reads through a bind mount: hosts, resolv.conf, hostname).</summary>
    public const UnixFileMode WorldReadable = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public static void Write(string path, ReadOnlySpan<byte> bytes, UnixFileMode mode = Private)
    {
        string temp = TempPathFor(path);
        try
        {
            using (var stream = new FileStream(temp, CreateOptions(mode, FileOptions.None)))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            Commit(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteText(string path, string text, UnixFileMode mode = Private) =>
        Write(path, System.Text.Encoding.UTF8.GetBytes(text), mode);

    public static Task WriteAsync(string path, ReadOnlyMemory<byte> bytes, UnixFileMode mode = Private, CancellationToken cancellationToken = default) =>
        WriteAsync(path, (stream, ct) => stream.WriteAsync(bytes, ct).AsTask(), mode, cancellationToken);

    /// <summary>Streams the content through <paramref name="write"/> (for content too large to hold in memory).</summary>
    public static async Task WriteAsync(string path, Func<Stream, CancellationToken, Task> write, UnixFileMode mode = Private,
        CancellationToken cancellationToken = default)
    {
        string temp = TempPathFor(path);
        try
        {
            await using (var stream = new FileStream(temp, CreateOptions(mode, FileOptions.Asynchronous)))
            {
                await write(stream, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            Commit(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Temporary files are hidden and unique, so a reader listing the directory can skip them by the suffix.</summary>
    public const string TempSuffix = ".tmp";

    /// <summary>
    /// Deletes the temporary files of writes of <paramref name="path"/> that a crash (a kill -9) cut short, so the
    /// directory can go. Call it only where no write of that file can be under way.
    /// </summary>
    public static void DeleteLeftovers(string path)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string[] leftovers;
        try
        {
            leftovers = Directory.GetFiles(directory, $".{Path.GetFileName(path)}.*{TempSuffix}");
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }
        foreach (var leftover in leftovers) TryDelete(leftover);
    }

    private static string TempPathFor(string path)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
    }

    private static FileStreamOptions CreateOptions(UnixFileMode mode, FileOptions options) => new()
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.Write,
        Options = options,
        UnixCreateMode = mode,
    };

    private static void Commit(string temp, string path)
    {
        File.Move(temp, path, overwrite: true);
        FileSync.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
