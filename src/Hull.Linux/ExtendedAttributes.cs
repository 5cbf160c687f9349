using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Hull.Linux;

/// <summary>Extended attributes of a path itself (the l* calls: a symlink's own attributes, never its target's).</summary>
public static partial class ExtendedAttributes
{
    public static void Set(string path, string name, ReadOnlySpan<byte> value)
    {
        if (lsetxattr(path, name, value, (nuint)value.Length, 0) != 0) throw SyscallException.Last($"lsetxattr {name}", path);
    }

    /// <summary>The value, or null when the attribute is not set.</summary>
    public static byte[]? TryGet(string path, string name)
    {
        while (true)
        {
            nint size = lgetxattr(path, name, ref Unsafe.NullRef<byte>(), 0);
            if (size < 0) return Missing(Marshal.GetLastPInvokeError(), path, name);
            var buffer = new byte[size];
            nint read = lgetxattr(path, name, ref MemoryMarshal.GetArrayDataReference(buffer), (nuint)buffer.Length);
            if (read >= 0) return read == size ? buffer : buffer[..(int)read];
            int errno = Marshal.GetLastPInvokeError();
            if (errno != 34 /* ERANGE: grew meanwhile */) return Missing(errno, path, name);
        }
    }

    /// <summary>The names of all attributes of the path.</summary>
    public static IReadOnlyList<string> List(string path)
    {
        while (true)
        {
            nint size = llistxattr(path, ref Unsafe.NullRef<byte>(), 0);
            if (size < 0) throw SyscallException.Last("llistxattr", path);
            if (size == 0) return [];
            var buffer = new byte[size];
            nint read = llistxattr(path, ref MemoryMarshal.GetArrayDataReference(buffer), (nuint)buffer.Length);
            if (read < 0)
            {
                if (Marshal.GetLastPInvokeError() == 34) continue; // ERANGE: grew meanwhile
                throw SyscallException.Last("llistxattr", path);
            }
            return Encoding.UTF8.GetString(buffer, 0, (int)read).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
    }

    private static byte[]? Missing(int errno, string path, string name) =>
        errno == Errno.ENODATA ? null : throw new SyscallException($"lgetxattr {name}", path, errno);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lsetxattr(string path, string name, ReadOnlySpan<byte> value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint lgetxattr(string path, string name, ref byte value, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint llistxattr(string path, ref byte list, nuint size);
}
