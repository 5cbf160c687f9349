using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Hull.Images.Tests.Unpack;

/// <summary>Crafts layer tars with System.Formats.Tar (pax by default) and compresses them.</summary>
internal sealed class LayerBuilder
{
    public static readonly DateTimeOffset DefaultTime = new(2023, 11, 14, 22, 13, 20, TimeSpan.Zero);
    public const UnixFileMode Mode0755 = (UnixFileMode)0b111_101_101;
    public const UnixFileMode Mode0644 = (UnixFileMode)0b110_100_100;

    private readonly MemoryStream _tar = new();
    private readonly TarWriter _writer;
    private readonly TarEntryFormat _format;

    public LayerBuilder(TarEntryFormat format = TarEntryFormat.Pax)
    {
        _format = format;
        _writer = new TarWriter(_tar, format, leaveOpen: true);
    }

    public LayerBuilder Dir(string name, UnixFileMode mode = Mode0755, int uid = 0, int gid = 0, DateTimeOffset? mtime = null) =>
        Add(Entry(TarEntryType.Directory, name, null, mode, uid, gid, mtime));

    public LayerBuilder File(string name, string content, UnixFileMode mode = Mode0644, int uid = 0, int gid = 0,
        DateTimeOffset? mtime = null, IReadOnlyDictionary<string, string>? xattrs = null)
    {
        var entry = Entry(TarEntryType.RegularFile, name, xattrs, mode, uid, gid, mtime);
        entry.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
        return Add(entry);
    }

    public LayerBuilder Symlink(string name, string target, int uid = 0, int gid = 0, DateTimeOffset? mtime = null)
    {
        var entry = Entry(TarEntryType.SymbolicLink, name, null, (UnixFileMode)0x1FF, uid, gid, mtime);
        entry.LinkName = target;
        return Add(entry);
    }

    public LayerBuilder HardLink(string name, string target)
    {
        var entry = Entry(TarEntryType.HardLink, name, null, Mode0644, 0, 0, null);
        entry.LinkName = target;
        return Add(entry);
    }

    public LayerBuilder CharDevice(string name, int major, int minor, UnixFileMode mode = Mode0644)
    {
        var entry = (PosixTarEntry)Entry(TarEntryType.CharacterDevice, name, null, mode, 0, 0, null);
        entry.DeviceMajor = major;
        entry.DeviceMinor = minor;
        return Add(entry);
    }

    public LayerBuilder Fifo(string name) => Add(Entry(TarEntryType.Fifo, name, null, Mode0644, 0, 0, null));

    public LayerBuilder Whiteout(string path)
    {
        int slash = path.LastIndexOf('/');
        return File(slash < 0 ? ".wh." + path : path[..(slash + 1)] + ".wh." + path[(slash + 1)..], "");
    }

    public LayerBuilder Opaque(string dir) => File(dir.TrimEnd('/') + "/.wh..wh..opq", "");

    public byte[] Build()
    {
        _writer.Dispose();
        return _tar.ToArray();
    }

    private LayerBuilder Add(TarEntry entry)
    {
        _writer.WriteEntry(entry);
        return this;
    }

    private TarEntry Entry(TarEntryType type, string name, IReadOnlyDictionary<string, string>? xattrs, UnixFileMode mode, int uid, int gid,
        DateTimeOffset? mtime)
    {
        TarEntry entry = _format switch
        {
            TarEntryFormat.Pax => new PaxTarEntry(type, name,
                (xattrs ?? new Dictionary<string, string>()).ToDictionary(p => "SCHILY.xattr." + p.Key, p => p.Value)),
            TarEntryFormat.Gnu => new GnuTarEntry(type, name),
            _ => new UstarTarEntry(type, name),
        };
        entry.Mode = mode;
        entry.Uid = uid;
        entry.Gid = gid;
        entry.ModificationTime = mtime ?? DefaultTime;
        return entry;
    }

    public static string DiffId(byte[] tar) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar));

    public static byte[] Gzip(byte[] tar)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(tar);
        return output.ToArray();
    }

    /// <summary>Compresses with the zstd command line tool, so the decoder is tested against the reference encoder.</summary>
    public static byte[] Zstd(byte[] tar)
    {
        var start = new ProcessStartInfo("zstd", "-q -c -3")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(output);
        process.StandardInput.BaseStream.Write(tar);
        process.StandardInput.Close();
        copy.GetAwaiter().GetResult();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, "zstd failed: " + process.StandardError.ReadToEnd());
        return output.ToArray();
    }
}
