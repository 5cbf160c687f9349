using System.Runtime.InteropServices;

namespace Hull.Linux;

/// <summary>A failed system call: the call, the path it was about and errno, so callers can react to ENOENT, EEXIST, ENOTSUP, ….</summary>
public sealed class SyscallException(string call, string? path, int errno)
    : IOException($"{call}{(path is null ? "" : $" \"{path}\"")}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
{
    public string Call { get; } = call;
    public string? Path { get; } = path;
    public int Errno { get; } = errno;

    internal static SyscallException Last(string call, string? path) => new(call, path, Marshal.GetLastPInvokeError());
}

/// <summary>The errno values callers test for (identical on every Linux architecture).</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENODATA = 61;
    public const int EOPNOTSUPP = 95; // ENOTSUP is the same value on Linux
}
