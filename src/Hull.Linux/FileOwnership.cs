using System.Runtime.InteropServices;

namespace Hull.Linux;

public static partial class FileOwnership
{
    public static void Chown(string path, int uid, int gid)
    {
        if (chown(path, uid, gid) != 0)
            throw new IOException($"chown {path} to {uid}:{gid} failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, int owner, int group);
}
