using System.Runtime.InteropServices;

namespace Hull.Linux.Namespaces;

/// <summary>Interface flags through the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls, in the calling thread's network namespace.</summary>
public static partial class NetworkInterfaces
{
    private const int AfInet = 2, SockDgram = 2, SockCloexec = 0x80000;
    private const ulong SiocGifFlags = 0x8913, SiocSifFlags = 0x8914;
    private const short IffUp = 0x1;

    /// <summary>Sets the interface up (e.g. <c>lo</c> in a fresh network namespace), like <c>ip link set NAME up</c>.</summary>
    public static unsafe void SetUp(string name)
    {
        var nameBytes = System.Text.Encoding.ASCII.GetBytes(name);
        if (nameBytes.Length >= 16) throw new ArgumentException($"interface name \"{name}\" is longer than 15 bytes", nameof(name));
        int fd = socket(AfInet, SockDgram | SockCloexec, 0);
        if (fd < 0) throw SyscallException.Last("socket", null);
        try
        {
            byte* ifreq = stackalloc byte[40]; // struct ifreq: char ifr_name[16] + a 24-byte union (ifr_flags is a short at 16)
            new Span<byte>(ifreq, 40).Clear();
            nameBytes.CopyTo(new Span<byte>(ifreq, 16));
            if (ioctl(fd, SiocGifFlags, ifreq) != 0) throw SyscallException.Last("ioctl(SIOCGIFFLAGS)", name);
            short* flags = (short*)(ifreq + 16);
            if ((*flags & IffUp) != 0) return;
            *flags |= IffUp;
            if (ioctl(fd, SiocSifFlags, ifreq) != 0) throw SyscallException.Last("ioctl(SIOCSIFFLAGS)", name);
        }
        finally
        {
            close(fd);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, ulong request, byte* argp);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
