namespace Hull.Images.Transfer;

/// <summary>Where one blob of a transfer is: the phases of pulls, pushes, imports and exports.</summary>
public enum TransferPhase
{
    Resolving,
    Waiting,
    Downloading,
    Downloaded,
    Unpacking,
    Uploading,
    Uploaded,
    /// <summary>An import reads the blob from the archive into the content store.</summary>
    Reading,
    /// <summary>An export writes the blob into the archive.</summary>
    Writing,
    /// <summary>Nothing to do: the destination has it (a pushed blob the registry has, a snapshot already unpacked).</summary>
    AlreadyPresent,
    Done,
}

/// <summary>
/// One step of a transfer, per blob (<see cref="Kind"/>: manifest, index, config, layer) or for the whole
/// image (kind <c>image</c>, phase Done, last): what a progress display draws.
/// </summary>
public readonly record struct TransferProgress(string Image, string Digest, string Kind, TransferPhase Phase, long Bytes, long Total)
{
    /// <summary>The phase as progress displays and the admin API spell it.</summary>
    public string PhaseName => Name(Phase);

    public static string Name(TransferPhase phase) => phase switch
    {
        TransferPhase.Resolving => "resolving",
        TransferPhase.Waiting => "waiting",
        TransferPhase.Downloading => "downloading",
        TransferPhase.Downloaded => "downloaded",
        TransferPhase.Unpacking => "unpacking",
        TransferPhase.Uploading => "uploading",
        TransferPhase.Uploaded => "pushed",
        TransferPhase.Reading => "reading",
        TransferPhase.Writing => "writing",
        TransferPhase.AlreadyPresent => "exists",
        TransferPhase.Done => "done",
        _ => phase.ToString().ToLowerInvariant(),
    };

    public static TransferProgress FromPull(PullProgress p) => new(p.Image, p.Digest, p.Kind, p.Phase switch
    {
        PullPhase.Resolving => TransferPhase.Resolving,
        PullPhase.Waiting => TransferPhase.Waiting,
        PullPhase.Downloading => TransferPhase.Downloading,
        PullPhase.Downloaded => TransferPhase.Downloaded,
        PullPhase.Unpacking => TransferPhase.Unpacking,
        PullPhase.AlreadyPresent => TransferPhase.AlreadyPresent,
        _ => TransferPhase.Done,
    }, p.Bytes, p.Total);
}

/// <summary>
/// Reports synchronously on the caller's thread, in order (<see cref="Progress{T}"/> posts to the thread
/// pool, which reorders a download's byte counts).
/// </summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>
/// Keeps each blob's progress moving forward for displays: a report that arrives late (byte counts
/// posted from another thread after the blob moved on) keeps the phase already reached and the highest
/// byte count seen. Phases only advance in the order of <see cref="TransferPhase"/>.
/// </summary>
public sealed class ForwardOnlyProgress(IProgress<TransferProgress> inner) : IProgress<TransferProgress>
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string, string), (TransferPhase Phase, long Bytes)> _reached = [];

    public void Report(TransferProgress value)
    {
        lock (_lock)
        {
            var key = (value.Digest, value.Kind);
            if (_reached.TryGetValue(key, out var reached) && value.Phase <= reached.Phase)
                value = value with { Phase = reached.Phase, Bytes = Math.Max(value.Bytes, reached.Bytes) };
            _reached[key] = (value.Phase, value.Bytes);
            inner.Report(value);
        }
    }
}
