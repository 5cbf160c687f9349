using System.Globalization;
using System.Text;

namespace Hull.Images.Unpack;

/// <summary>
/// A forward-only tar reader for layers: ustar, pax (local and global headers, SCHILY.xattr and
/// LIBARCHIVE.xattr with binary values) and GNU (long names, base-256 numbers).
/// System.Formats.Tar is not used because it decodes pax values as UTF-8, which corrupts binary
/// extended attributes such as security.capability. Errors are InvalidDataException.
/// </summary>
internal sealed class LayerTarReader(Stream stream)
{
    private readonly Stream _stream = stream;
    private const int Block = 512;
    private const int MaxLongName = 1 << 20;
    private const int MaxPaxHeader = 8 << 20;
    private const int MaxGlobalPax = 1 << 20;

    private readonly byte[] _header = new byte[Block];
    private readonly Dictionary<string, byte[]> _globalPax = new(StringComparer.Ordinal);
    private long _globalPaxBytes;
    private EntryDataStream? _current;
    private long _position; // of the stream, for error messages

    /// <summary>The next entry, or null at the end of the archive.</summary>
    public async ValueTask<LayerTarEntry?> NextAsync(CancellationToken cancellationToken)
    {
        if (_current is not null)
        {
            await SkipAsync(_current.Remaining + Padding(_current.Length), cancellationToken).ConfigureAwait(false);
            _current = null;
        }

        Dictionary<string, byte[]>? pax = null;
        string? longName = null, longLink = null;
        while (true)
        {
            long headerAt = _position;
            if (!await ReadBlockAsync(cancellationToken).ConfigureAwait(false)) return null; // EOF without the zero blocks: accepted, like GNU tar
            if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0) return null; // end-of-archive marker
            VerifyChecksum(headerAt);

            byte type = _header[156];
            long size = ParseNumber(_header.AsSpan(124, 12), "size", headerAt);
            switch (type)
            {
                case (byte)'x':
                    pax = ParsePax(await ReadMetaAsync(size, MaxPaxHeader, cancellationToken).ConfigureAwait(false), headerAt);
                    continue;
                case (byte)'g':
                    foreach (var (k, v) in ParsePax(await ReadMetaAsync(size, MaxPaxHeader, cancellationToken).ConfigureAwait(false), headerAt))
                    {
                        _globalPaxBytes += k.Length + v.Length - (_globalPax.TryGetValue(k, out var old) ? k.Length + old.Length : 0);
                        _globalPax[k] = v;
                    }
                    // Global headers accumulate and are copied into every later entry: bound them as a whole, not one by one.
                    if (_globalPaxBytes > MaxGlobalPax)
                        throw Corrupt(headerAt, $"global pax headers hold more than {MaxGlobalPax} bytes");
                    continue;
                case (byte)'L':
                    longName = CString(await ReadMetaAsync(size, MaxLongName, cancellationToken).ConfigureAwait(false));
                    continue;
                case (byte)'K':
                    longLink = CString(await ReadMetaAsync(size, MaxLongName, cancellationToken).ConfigureAwait(false));
                    continue;
                case (byte)'V': // a volume label carries no file
                    await SkipAsync(size + Padding(size), cancellationToken).ConfigureAwait(false);
                    continue;
            }
            return BuildEntry(type, size, pax, longName, longLink, headerAt);
        }
    }

    private LayerTarEntry BuildEntry(byte type, long size, Dictionary<string, byte[]>? localPax, string? longName, string? longLink, long headerAt)
    {
        var pax = _globalPax.Count == 0 ? localPax ?? [] : new Dictionary<string, byte[]>(_globalPax, StringComparer.Ordinal);
        if (_globalPax.Count != 0 && localPax is not null)
            foreach (var (k, v) in localPax) pax[k] = v;

        bool gnu = _header.AsSpan(257, 8).SequenceEqual("ustar  \0"u8);
        bool posix = !gnu && _header.AsSpan(257, 5).SequenceEqual("ustar"u8);
        string name = CString(_header.AsSpan(0, 100));
        if (posix && _header[345] != 0) name = CString(_header.AsSpan(345, 155)) + "/" + name;
        name = Text(pax, "path") ?? longName ?? name;
        string linkName = Text(pax, "linkpath") ?? longLink ?? CString(_header.AsSpan(157, 100));

        if (pax.Keys.Any(k => k.StartsWith("GNU.sparse.", StringComparison.Ordinal)) || type == 'S')
            throw new InvalidDataException($"entry \"{name}\" is a GNU sparse file, which Hull does not unpack");
        var kind = type switch
        {
            (byte)'0' or (byte)'7' => LayerEntryKind.File,
            0 => name.EndsWith('/') ? LayerEntryKind.Directory : LayerEntryKind.File, // pre-POSIX tar
            (byte)'1' => LayerEntryKind.HardLink,
            (byte)'2' => LayerEntryKind.Symlink,
            (byte)'3' => LayerEntryKind.CharacterDevice,
            (byte)'4' => LayerEntryKind.BlockDevice,
            (byte)'5' or (byte)'D' => LayerEntryKind.Directory,
            (byte)'6' => LayerEntryKind.Fifo,
            _ => throw new InvalidDataException($"entry \"{name}\" has tar type '{(char)type}' (0x{type:x2}), which Hull does not unpack"),
        };

        if (PaxNumber(pax, "size", headerAt) is { } paxSize) size = paxSize;
        // Only regular files carry data, whatever the header's size field claims (as Go's archive/tar reads it).
        long dataSize = kind == LayerEntryKind.File || type == 'D' ? size : 0;
        var data = new EntryDataStream(this, dataSize);
        _current = data;

        var (mtime, mtimeNs) = PaxTime(pax, "mtime", headerAt) ?? (ParseNumber(_header.AsSpan(136, 12), "mtime", headerAt), 0u);
        return new LayerTarEntry
        {
            Name = name,
            Kind = kind,
            LinkName = linkName,
            Mode = (UnixFileMode)(ParseNumber(_header.AsSpan(100, 8), "mode", headerAt) & 0xFFF),
            Uid = checked((uint)(PaxNumber(pax, "uid", headerAt) ?? ParseNumber(_header.AsSpan(108, 8), "uid", headerAt))),
            Gid = checked((uint)(PaxNumber(pax, "gid", headerAt) ?? ParseNumber(_header.AsSpan(116, 8), "gid", headerAt))),
            Size = dataSize,
            MtimeSeconds = mtime,
            MtimeNanoseconds = mtimeNs,
            Atime = PaxTime(pax, "atime", headerAt),
            DeviceMajor = (uint)ParseNumber(_header.AsSpan(329, 8), "devmajor", headerAt),
            DeviceMinor = (uint)ParseNumber(_header.AsSpan(337, 8), "devminor", headerAt),
            Xattrs = Xattrs(pax),
            Data = kind == LayerEntryKind.File ? data : Stream.Null,
        };
    }

    // ---- pax ------------------------------------------------------------------------------------

    /// <summary>Records are "LEN KEY=VALUE\n" with LEN counting the whole record in bytes; values stay bytes.</summary>
    private Dictionary<string, byte[]> ParsePax(byte[] data, long headerAt)
    {
        var records = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        int pos = 0;
        while (pos < data.Length && data[pos] != 0)
        {
            int space = data.AsSpan(pos).IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(data.AsSpan(pos, space), NumberStyles.None, CultureInfo.InvariantCulture, out int length) ||
                length <= space + 1 || pos + length > data.Length || data[pos + length - 1] != '\n')
                throw Corrupt(headerAt, "malformed pax record");
            var record = data.AsSpan(pos + space + 1, length - space - 2);
            int equals = record.IndexOf((byte)'=');
            if (equals <= 0) throw Corrupt(headerAt, "pax record without '='");
            records[Encoding.UTF8.GetString(record[..equals])] = record[(equals + 1)..].ToArray();
            pos += length;
        }
        return records;
    }

    private static string? Text(Dictionary<string, byte[]> pax, string key) =>
        pax.TryGetValue(key, out var v) ? Encoding.UTF8.GetString(v) : null;

    private long? PaxNumber(Dictionary<string, byte[]> pax, string key, long headerAt)
    {
        if (!pax.TryGetValue(key, out var v)) return null;
        return long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n)
            ? n : throw Corrupt(headerAt, $"pax {key} \"{Encoding.UTF8.GetString(v)}\" is not a number");
    }

    /// <summary>Pax times are decimal seconds with an optional fraction, possibly negative.</summary>
    private (long, uint)? PaxTime(Dictionary<string, byte[]> pax, string key, long headerAt)
    {
        if (!pax.TryGetValue(key, out var v)) return null;
        string text = Encoding.ASCII.GetString(v);
        bool negative = text.StartsWith('-');
        var parts = text.TrimStart('-').Split('.', 2);
        if (!long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long seconds) ||
            (parts.Length == 2 && (parts[1].Length == 0 || !parts[1].All(char.IsAsciiDigit))))
            throw Corrupt(headerAt, $"pax {key} \"{text}\" is not a time");
        uint nanos = parts.Length == 2 ? uint.Parse(parts[1].PadRight(9, '0')[..9], CultureInfo.InvariantCulture) : 0;
        if (!negative) return (seconds, nanos);
        return nanos == 0 ? (-seconds, 0) : (-seconds - 1, 1_000_000_000 - nanos);
    }

    private static List<KeyValuePair<string, byte[]>> Xattrs(Dictionary<string, byte[]> pax)
    {
        var list = new List<KeyValuePair<string, byte[]>>();
        foreach (var (key, value) in pax)
        {
            if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                list.Add(new(key["SCHILY.xattr.".Length..], value));
            else if (key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
                list.Add(new(Uri.UnescapeDataString(key["LIBARCHIVE.xattr.".Length..]), FromBase64(value)));
        }
        return list;
    }

    private static byte[] FromBase64(byte[] value)
    {
        var text = Encoding.ASCII.GetString(value).TrimEnd('=');
        text = text.PadRight(text.Length + (4 - text.Length % 4) % 4, '=');
        return Convert.FromBase64String(text);
    }

    // ---- header fields --------------------------------------------------------------------------

    private void VerifyChecksum(long headerAt)
    {
        long expected = ParseNumber(_header.AsSpan(148, 8), "checksum", headerAt);
        long unsigned = 0, signed = 0;
        for (int i = 0; i < Block; i++)
        {
            byte b = i is >= 148 and < 156 ? (byte)' ' : _header[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        if (expected != unsigned && expected != signed)
            throw Corrupt(headerAt, "header checksum mismatch (not a tar archive, or corrupt)");
    }

    /// <summary>Octal, NUL/space terminated, or GNU base-256 when the high bit of the first byte is set.</summary>
    private long ParseNumber(ReadOnlySpan<byte> field, string name, long headerAt)
    {
        if ((field[0] & 0x80) != 0)
        {
            if (field[0] == 0xFF) throw Corrupt(headerAt, $"negative {name}");
            long value = field[0] & 0x7F;
            for (int i = 1; i < field.Length; i++)
            {
                if (value > (long.MaxValue >> 8)) throw Corrupt(headerAt, $"{name} overflows");
                value = (value << 8) | field[i];
            }
            return value;
        }
        long result = 0;
        int pos = 0;
        while (pos < field.Length && field[pos] is (byte)' ' or 0) pos++;
        for (; pos < field.Length && field[pos] is not ((byte)' ' or 0); pos++)
        {
            if (field[pos] is < (byte)'0' or > (byte)'7' || result > (long.MaxValue >> 3))
                throw Corrupt(headerAt, $"{name} field is not an octal number");
            result = (result << 3) | (uint)(field[pos] - '0');
        }
        return result;
    }

    private static string CString(ReadOnlySpan<byte> field)
    {
        int nul = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? field : field[..nul]);
    }

    private InvalidDataException Corrupt(long headerAt, string problem) => new($"tar header at byte {headerAt}: {problem}");

    // ---- reading ----------------------------------------------------------------------------------

    private static long Padding(long size) => (Block - size % Block) % Block;

    private async ValueTask<bool> ReadBlockAsync(CancellationToken cancellationToken)
    {
        int read = await _stream.ReadAtLeastAsync(_header, Block, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        _position += read;
        if (read == 0) return false;
        if (read < Block) throw new InvalidDataException($"tar archive is truncated at byte {_position} (in a header)");
        return true;
    }

    private async ValueTask<byte[]> ReadMetaAsync(long size, int limit, CancellationToken cancellationToken)
    {
        if (size > limit) throw new InvalidDataException($"tar header at byte {_position - Block}: extended header of {size} bytes exceeds {limit}");
        var data = new byte[size];
        await ReadExactlyAsync(data, cancellationToken).ConfigureAwait(false);
        await SkipAsync(Padding(size), cancellationToken).ConfigureAwait(false);
        return data;
    }

    private async ValueTask ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int read = await _stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        _position += read;
        if (read < buffer.Length) throw new InvalidDataException($"tar archive is truncated at byte {_position}");
    }

    private async ValueTask SkipAsync(long count, CancellationToken cancellationToken)
    {
        var buffer = new byte[(int)Math.Min(count, 64 * 1024)];
        while (count > 0)
        {
            int chunk = (int)Math.Min(count, buffer.Length);
            await ReadExactlyAsync(buffer.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
            count -= chunk;
        }
    }

    /// <summary>The data of one entry: reads stop at its end; a short archive is an error.</summary>
    private sealed class EntryDataStream(LayerTarReader reader, long length) : ReadOnlyStreamBase
    {
        public long Remaining { get; private set; } = length;
        public override long Length { get; } = length;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Remaining == 0 || buffer.Length == 0) return 0;
            if (reader._current != this) throw new InvalidOperationException("the tar reader has moved past this entry");
            int read = await reader._stream.ReadAsync(buffer[..(int)Math.Min(buffer.Length, Remaining)], cancellationToken).ConfigureAwait(false);
            if (read == 0) throw new InvalidDataException($"tar archive is truncated at byte {reader._position} (in file data)");
            reader._position += read;
            Remaining -= read;
            return read;
        }

        public override long Position { get => Length - Remaining; set => throw new NotSupportedException(); }
    }
}
