using System.Formats.Tar;
using System.Text;
using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Tests.Content;
using Hull.Images.Unpack;
using Hull.Linux;

namespace Hull.Images.Tests.Unpack;

public sealed class LayerApplierTests : IDisposable
{
    private const string Layer = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private static readonly DateTimeOffset T1 = new(2020, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly DateTimeOffset T2 = new(2021, 6, 7, 8, 9, 10, TimeSpan.Zero);
    private readonly TestRoot _root = new();
    private readonly string _target;

    public LayerApplierTests() => Directory.CreateDirectory(_target = _root.Sub("target"));

    public void Dispose() => _root.Dispose();

    private Task<string> ApplyAsync(byte[] layer, WhiteoutMode mode = WhiteoutMode.Delete, string mediaType = MediaTypes.OciLayer) =>
        LayerApplier.ApplyAsync(new NonSeekableStream(layer), mediaType, _target,
            new LayerApplyOptions { Whiteouts = mode, LayerDigest = Layer }, default);

    private string At(string relative) => Path.Combine(_target, relative);

    private static byte[] RichLayer() => new LayerBuilder()
        .Dir("etc", mtime: T1)
        .File("etc/hosts", "127.0.0.1 localhost\n", uid: 1000, gid: 1000, mtime: T2, xattrs: new Dictionary<string, string> { ["user.note"] = "hello" })
        .Symlink("etc/link", "hosts", uid: 1000, gid: 1000, mtime: T1)
        .HardLink("etc/hosts2", "etc/hosts")
        .File("usr/bin/tool", "#!/bin/sh\n", mode: (UnixFileMode)0b100_111_101_101) // 04755, parents not listed
        .CharDevice("dev/null", 1, 3, mode: (UnixFileMode)0b110_110_110)
        .Fifo("run/fifo")
        .Dir("home/user", mode: (UnixFileMode)0b111_000_000, uid: 1000, gid: 1000, mtime: T1)
        .File("home/user/.profile", "x", uid: 1000, gid: 1000)
        .Build();

    [Theory]
    [InlineData("none")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    public async Task Applies_files_links_devices_owners_modes_xattrs_and_times(string compression)
    {
        var tar = RichLayer();
        var layer = compression switch { "gzip" => LayerBuilder.Gzip(tar), "zstd" => LayerBuilder.Zstd(tar), _ => tar };
        string mediaType = compression switch { "gzip" => MediaTypes.OciLayerGzip, "zstd" => MediaTypes.OciLayerZstd, _ => MediaTypes.OciLayer };

        string diffId = await ApplyAsync(layer, mediaType: mediaType);

        Assert.Equal(LayerBuilder.DiffId(tar), diffId); // sha256 of the uncompressed tar, whatever the compression
        Assert.Equal("127.0.0.1 localhost\n", File.ReadAllText(At("etc/hosts")));
        var hosts = FileStatus.Get(At("etc/hosts"));
        Assert.Equal((1000u, 1000u), (hosts.Uid, hosts.Gid));
        Assert.Equal(LayerBuilder.Mode0644, hosts.Permissions);
        Assert.Equal(T2.ToUnixTimeSeconds(), hosts.MtimeSeconds);
        Assert.Equal("hello"u8.ToArray(), ExtendedAttributes.TryGet(At("etc/hosts"), "user.note"));

        var link = FileStatus.Get(At("etc/link"));
        Assert.True(link.IsSymlink);
        Assert.Equal("hosts", new FileInfo(At("etc/link")).LinkTarget);
        Assert.Equal((1000u, T1.ToUnixTimeSeconds()), (link.Uid, link.MtimeSeconds)); // lchown and utimensat on the link itself

        Assert.Equal(hosts.Inode, FileStatus.Get(At("etc/hosts2")).Inode);
        Assert.Equal(2u, FileStatus.Get(At("etc/hosts2")).LinkCount);

        var tool = FileStatus.Get(At("usr/bin/tool"));
        Assert.True(tool.Permissions.HasFlag(UnixFileMode.SetUser));
        Assert.Equal(LayerBuilder.Mode0755, FileStatus.Get(At("usr")).Permissions);

        var device = FileStatus.Get(At("dev/null"));
        Assert.Equal((UnixFileType.CharacterDevice, 1u, 3u), (device.Type, device.RdevMajor, device.RdevMinor));
        Assert.Equal(UnixFileType.Fifo, FileStatus.Get(At("run/fifo")).Type);

        // A directory's time is set after its contents were written.
        var home = FileStatus.Get(At("home/user"));
        Assert.Equal((1000u, (UnixFileMode)0b111_000_000, T1.ToUnixTimeSeconds()), (home.Uid, home.Permissions, home.MtimeSeconds));
        Assert.Equal(T1.ToUnixTimeSeconds(), FileStatus.Get(At("etc")).MtimeSeconds);
    }

    [Theory]
    [InlineData(TarEntryFormat.Gnu)]
    [InlineData(TarEntryFormat.Ustar)]
    [InlineData(TarEntryFormat.Pax)]
    public async Task Reads_long_names_in_every_tar_format(TarEntryFormat format)
    {
        string dir = string.Join('/', Enumerable.Range(0, 12).Select(i => $"directory-{i}"));
        string longName = dir + "/" + new string('f', 90);
        // ustar splits a long name into prefix + name but has no room for a long link target.
        string linkTarget = format == TarEntryFormat.Ustar ? "directory-0" : longName;
        var tar = new LayerBuilder(format).File(longName, "deep").Symlink("short", linkTarget).Build();
        await ApplyAsync(tar);
        Assert.Equal("deep", File.ReadAllText(At(longName)));
        Assert.Equal(linkTarget, new FileInfo(At("short")).LinkTarget);
    }

    [Fact]
    public async Task Keeps_binary_xattr_values_byte_for_byte()
    {
        byte[] value = [0x01, 0x00, 0xFF, 0x02, 0x80];
        var tar = RawTar.PaxFile("bin/ping", "ELF", ("SCHILY.xattr.user.binary", value));
        await ApplyAsync(tar);
        Assert.Equal(value, ExtendedAttributes.TryGet(At("bin/ping"), "user.binary"));
    }

    [Fact]
    public async Task Whiteouts_delete_what_they_hide_in_delete_mode()
    {
        await ApplyAsync(new LayerBuilder().File("a", "1").File("b", "2").Dir("d").File("d/x", "x").Dir("d/sub").File("d/sub/y", "y").Build());
        await ApplyAsync(new LayerBuilder().Whiteout("a").Dir("d").Opaque("d").File("d/z", "z").Build());

        Assert.False(File.Exists(At("a")));
        Assert.True(File.Exists(At("b")));
        Assert.Equal(["z"], Directory.EnumerateFileSystemEntries(At("d")).Select(Path.GetFileName));
        Assert.False(File.Exists(At(".wh.a")));
    }

    [Fact]
    public async Task A_whiteout_below_a_missing_directory_creates_nothing_in_delete_mode()
    {
        await ApplyAsync(new LayerBuilder().Whiteout("never/there").Dir("d").Whiteout("d").Build());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_target));
    }

    [Fact]
    public async Task Whiteouts_become_overlay_char_devices_and_opaque_xattrs_in_overlay_mode()
    {
        await ApplyAsync(new LayerBuilder().Whiteout("etc/gone").Dir("d").Opaque("d").File("d/z", "z").Build(), WhiteoutMode.Overlay);

        var whiteout = FileStatus.Get(At("etc/gone"));
        Assert.Equal((UnixFileType.CharacterDevice, 0u, 0u), (whiteout.Type, whiteout.RdevMajor, whiteout.RdevMinor));
        Assert.Equal("y"u8.ToArray(), ExtendedAttributes.TryGet(At("d"), "trusted.overlay.opaque"));
        Assert.False(File.Exists(At("d/.wh..wh..opq")));
    }

    [Fact]
    public async Task A_layer_cannot_forge_overlay_xattrs()
    {
        await ApplyAsync(new LayerBuilder().Dir("d").File("f", "", xattrs: new Dictionary<string, string> { ["trusted.overlay.redirect"] = "/x" }).Build(),
            WhiteoutMode.Overlay);
        Assert.Null(ExtendedAttributes.TryGet(At("f"), "trusted.overlay.redirect"));
    }

    [Fact]
    public async Task Later_entries_replace_earlier_ones_without_following_symlinks()
    {
        string outside = _root.Sub("outside");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "f"), "original");
        // A symlink to an outside file, then a regular file of the same name: the link is replaced, not written through.
        await ApplyAsync(new LayerBuilder().Symlink("f", Path.Combine(outside, "f")).File("f", "new").Build());
        Assert.Equal("original", File.ReadAllText(Path.Combine(outside, "f")));
        Assert.Equal("new", File.ReadAllText(At("f")));
        Assert.False(FileStatus.Get(At("f")).IsSymlink);
    }

    [Theory]
    [InlineData(MediaTypes.OciLayerZstd)]
    [InlineData(MediaTypes.OciLayerGzip)] // members, as pigz and eStargz write them
    public async Task Decodes_streams_of_several_frames(string mediaType)
    {
        var tar = RichLayer();
        Func<byte[], byte[]> compress = mediaType == MediaTypes.OciLayerZstd ? LayerBuilder.Zstd : LayerBuilder.Gzip;
        byte[] layer = [.. compress(tar[..1536]), .. compress(tar[1536..])];
        Assert.Equal(LayerBuilder.DiffId(tar), await ApplyAsync(layer, mediaType: mediaType));
        Assert.Equal("127.0.0.1 localhost\n", File.ReadAllText(At("etc/hosts")));
    }

    [Theory]
    [InlineData(8, "truncated")] // no trailer: the tar inside is whole, which System.IO.Compression.GZipStream accepts
    [InlineData(3, "truncated")]
    [InlineData(-1, "incorrect data check")] // the CRC-32 in the trailer does not match
    [InlineData(0, "incorrect header check")] // bytes after the last member that are no gzip member
    public async Task Rejects_gzip_streams_that_are_cut_short_or_do_not_check_out(int cut, string problem)
    {
        var gzip = LayerBuilder.Gzip(RichLayer());
        byte[] layer = cut switch
        {
            > 0 => gzip[..^cut],
            < 0 => [.. gzip[..^8], (byte)(gzip[^8] ^ 0xFF), .. gzip[^7..]],
            _ => [.. gzip, .. "trailing garbage"u8],
        };
        var e = await RejectAsync(layer, MediaTypes.OciLayerGzip);
        Assert.Contains("not a valid gzip-compressed tar", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public async Task Removing_a_directory_never_follows_symlinks_inside_it()
    {
        string outside = _root.Sub("outside");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "precious"), "p");
        await ApplyAsync(new LayerBuilder().Dir("d").Symlink("d/out", outside).Build());
        await ApplyAsync(new LayerBuilder().Whiteout("d").Build());
        Assert.False(Directory.Exists(At("d")));
        Assert.Equal("p", File.ReadAllText(Path.Combine(outside, "precious")));
    }

    // ---- malicious layers ---------------------------------------------------------------------

    [Fact]
    public async Task Rejects_dot_dot_paths()
    {
        var e = await RejectAsync(new LayerBuilder().File("ok", "x").File("../../etc/x", "pwned").Build());
        Assert.Contains("entry \"../../etc/x\"", e.Message);
        Assert.Contains("\"..\"", e.Message);
        Assert.False(File.Exists(_root.Sub("etc", "x")));
        Assert.False(File.Exists(Path.GetFullPath(Path.Combine(_target, "../../etc/x"))));
    }

    [Fact]
    public async Task Takes_absolute_paths_relative_to_the_layer()
    {
        await ApplyAsync(new LayerBuilder().File("/etc/hull-absolute-test", "inside").Build());
        Assert.Equal("inside", File.ReadAllText(At("etc/hull-absolute-test")));
        Assert.False(File.Exists("/etc/hull-absolute-test"));
    }

    [Theory]
    [InlineData("/etc")]
    [InlineData("../outside")]
    public async Task Rejects_writing_through_a_symlink_the_layer_created(string linkTarget)
    {
        string outside = _root.Sub("outside");
        Directory.CreateDirectory(outside);
        var e = await RejectAsync(new LayerBuilder().Symlink("a", linkTarget).File("a/passwd", "root::0:0::/:/bin/sh").Build());
        Assert.Contains("entry \"a/passwd\"", e.Message);
        Assert.Contains("symlink \"a\"", e.Message);
        Assert.False(File.Exists(Path.Combine(outside, "passwd")));
        Assert.DoesNotContain("root::0:0", File.ReadAllText("/etc/passwd"));
    }

    [Theory]
    [InlineData("/etc/passwd", "not in the layer")]
    [InlineData("../outside/secret", "\"..\"")]
    public async Task Rejects_hard_links_to_files_outside_the_layer(string linkTarget, string problem)
    {
        string outside = _root.Sub("outside");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "secret"), "s");
        var e = await RejectAsync(new LayerBuilder().HardLink("h", linkTarget).Build());
        Assert.Contains("entry \"h\"", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.Equal(1u, FileStatus.Get(Path.Combine(outside, "secret")).LinkCount);
        Assert.False(File.Exists(At("h")));
    }

    [Fact]
    public async Task Rejects_a_hard_link_through_a_symlink()
    {
        var e = await RejectAsync(new LayerBuilder().Symlink("a", "/etc").HardLink("h", "a/passwd").Build());
        Assert.Contains("symlink \"a\"", e.Message);
        Assert.Equal(1u, FileStatus.Get("/etc/passwd").LinkCount);
    }

    private const int GzipHeaderLength = 10; // GZipStream writes no file name or comment

    [Fact]
    public async Task Rejects_corrupt_and_truncated_archives()
    {
        var tar = RichLayer();
        var e = await RejectAsync(tar[..700]);
        Assert.Contains("not a valid tar", e.Message);
        var gzip = LayerBuilder.Gzip(tar);
        // The first deflate block's type becomes the reserved 0b11. (A byte flipped at random is not always corrupt: the
        // tar is mostly zeros, and a copy of zeros from another distance inflates to the same tar.)
        gzip[GzipHeaderLength] |= 0b110;
        e = await RejectAsync(gzip, MediaTypes.OciLayerGzip);
        Assert.Contains("not a valid gzip-compressed tar", e.Message);
        var zstd = LayerBuilder.Zstd(tar);
        e = await RejectAsync(zstd[..(zstd.Length - 5)], MediaTypes.OciLayerZstd);
        Assert.Contains("zstd", e.Message);
    }

    [Fact]
    public async Task Rejects_media_types_that_are_not_layers()
    {
        var e = await RejectAsync(RichLayer(), MediaTypes.OciConfig);
        Assert.Contains("not a tar layer", e.Message);
    }

    [Fact]
    public async Task A_global_pax_header_applies_to_the_entries_after_it()
    {
        var tar = RawTar.Concat(
            RawTar.Global(("SCHILY.xattr.user.origin", "global"u8.ToArray())),
            RawTar.PaxFile("a", "1"),
            RawTar.PaxFile("b", "2", ("SCHILY.xattr.user.origin", "local"u8.ToArray())));
        await ApplyAsync(tar);
        Assert.Equal("global"u8.ToArray(), ExtendedAttributes.TryGet(At("a"), "user.origin"));
        Assert.Equal("local"u8.ToArray(), ExtendedAttributes.TryGet(At("b"), "user.origin"));
    }

    [Fact]
    public async Task Global_pax_headers_that_pile_up_beyond_the_bound_are_rejected()
    {
        // Each header is well within the limit for one header; together they are not (distinct keys accumulate).
        var headers = Enumerable.Range(0, 5).Select(i => RawTar.Global(("comment.pile" + i, new byte[300 * 1024]))).ToArray();
        var e = await RejectAsync(RawTar.Concat([.. headers, RawTar.PaxFile("a", "1")]));
        Assert.Contains("global pax headers hold more than", e.Message);
        Assert.False(File.Exists(At("a")));
    }

    private async Task<HullException> RejectAsync(byte[] layer, string mediaType = MediaTypes.OciLayer)
    {
        var e = await Assert.ThrowsAsync<HullException>(() => ApplyAsync(layer, mediaType: mediaType));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(Layer, e.Message);
        return e;
    }
}

/// <summary>What a download looks like to the applier: no seeking, no length.</summary>
internal sealed class NonSeekableStream(byte[] data) : Stream
{
    private readonly MemoryStream _inner = new(data);
    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 7000));
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.ReadAsync(buffer[..Math.Min(buffer.Length, 7000)], cancellationToken); // short reads, like a network
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    /// <summary>How far it was read (a network stream cannot seek, but tests want to know).</summary>
    public override long Position { get => _inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Tar bytes written by hand, for what TarWriter cannot express (binary pax values).</summary>
internal static class RawTar
{
    public static byte[] PaxFile(string name, string content, params (string Key, byte[] Value)[] records)
    {
        var pax = Records(records);
        var data = Encoding.UTF8.GetBytes(content);
        var tar = new MemoryStream();
        if (pax.Length > 0) Write(tar, Header("PaxHeader/" + name, 'x', pax.Length), pax);
        Write(tar, Header(name, '0', data.Length), data);
        tar.Write(new byte[1024]);
        return tar.ToArray();
    }

    /// <summary>A global pax header ('g') alone, without the end-of-archive blocks.</summary>
    public static byte[] Global(params (string Key, byte[] Value)[] records)
    {
        var pax = Records(records);
        var tar = new MemoryStream();
        Write(tar, Header("GlobalHead.0.0", 'g', pax.Length), pax);
        return tar.ToArray();
    }

    /// <summary>Archives one after another, each one's end-of-archive blocks dropped but the last's.</summary>
    public static byte[] Concat(params byte[][] parts)
    {
        var tar = new MemoryStream();
        foreach (var part in parts) tar.Write(part.AsSpan(0, EndsWithEof(part) ? part.Length - 1024 : part.Length));
        tar.Write(new byte[1024]);
        return tar.ToArray();
    }

    private static bool EndsWithEof(byte[] part) => part.Length >= 1024 && part.AsSpan(part.Length - 1024).IndexOfAnyExcept((byte)0) < 0;

    private static byte[] Records((string Key, byte[] Value)[] records)
    {
        var pax = new MemoryStream();
        foreach (var (key, value) in records)
        {
            var body = Encoding.UTF8.GetBytes(" " + key + "=").Concat(value).Append((byte)'\n').ToArray();
            int length = body.Length + 1;
            while (length.ToString().Length + body.Length != length) length++;
            pax.Write(Encoding.ASCII.GetBytes(length.ToString()));
            pax.Write(body);
        }
        return pax.ToArray();
    }

    private static void Write(Stream tar, byte[] header, byte[] data)
    {
        tar.Write(header);
        tar.Write(data);
        tar.Write(new byte[(512 - data.Length % 512) % 512]);
    }

    private static byte[] Header(string name, char type, long size)
    {
        var h = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(h, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(h, 124);
        Encoding.ASCII.GetBytes("14530000000\0").CopyTo(h, 136);
        h[156] = (byte)type;
        Encoding.ASCII.GetBytes("ustar\000").CopyTo(h, 257);
        for (int i = 148; i < 156; i++) h[i] = (byte)' ';
        Encoding.ASCII.GetBytes(Convert.ToString(h.Sum(b => b), 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return h;
    }
}
