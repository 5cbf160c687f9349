using System.Buffers;
using System.Text;

namespace Hull.Grpc.Hpack;

/// <summary>
/// Decodes HPACK header blocks (RFC 7541) for one HTTP/2 connection direction. Not thread-safe;
/// blocks must be decoded in the order they arrive because they share the dynamic table.
/// </summary>
public sealed class HpackDecoder
{
    private const int MaxRetainedBuffer = 16 * 1024;

    private readonly int _maxHeaderListSize;
    private DynamicTable _table; // not readonly: Clone swaps in a copy
    private int _maxDynamicTableSize;
    private bool _sizeUpdateRequired;
    private byte[] _huffmanBuffer = new byte[128]; // reused so Huffman strings cost only the final string

    /// <param name="maxDynamicTableSize">
    /// Table size both endpoints start with (RFC 7541 default 4096) and the initial advertised limit.
    /// </param>
    /// <param name="maxHeaderListSize">Limit on sum(name + value + 32) per block (RFC 9113 6.5.2).</param>
    public HpackDecoder(int maxDynamicTableSize = 4096, int maxHeaderListSize = 65536)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderListSize);
        _maxDynamicTableSize = maxDynamicTableSize;
        _maxHeaderListSize = maxHeaderListSize;
        _table = new DynamicTable(maxDynamicTableSize);
    }

    /// <summary>
    /// Limit we advertised in SETTINGS_HEADER_TABLE_SIZE (set it when the SETTINGS is acknowledged).
    /// A dynamic table size update above it is a decoding error. Lowering it below the current table
    /// size obliges the peer to start its next block with a size update (RFC 7541 4.2).
    /// </summary>
    public int MaxDynamicTableSize
    {
        get => _maxDynamicTableSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            if (value < _table.MaxSize)
            {
                _sizeUpdateRequired = true;
            }

            _maxDynamicTableSize = value;
        }
    }

    internal DynamicTable Table => _table;

    /// <summary>Snapshot of the decoding state; lets tests fuzz many blocks against one context.</summary>
    internal HpackDecoder Clone()
    {
        var copy = (HpackDecoder)MemberwiseClone();
        copy._table = _table.Clone();
        copy._huffmanBuffer = new byte[_huffmanBuffer.Length];
        return copy;
    }

    /// <summary>
    /// Decodes one complete header block and appends its fields to <paramref name="output"/>.
    /// Throws <see cref="HpackException"/> on malformed input; the connection must then be closed
    /// (COMPRESSION_ERROR) because the dynamic table may be out of sync with the peer. The one
    /// exception is an oversized header list: the whole block is still processed first.
    /// </summary>
    public void Decode(ReadOnlySpan<byte> block, List<HeaderField> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        int pos = 0;

        // Size updates are only legal before the first field (RFC 7541 4.2).
        while (pos < block.Length && (block[pos] & 0xE0) == 0x20)
        {
            int size = IntegerCodec.Decode(block, ref pos, 5);
            if (size > _maxDynamicTableSize)
            {
                throw new HpackException(
                    $"Dynamic table size update to {size} exceeds the limit {_maxDynamicTableSize}.");
            }

            _table.SetMaxSize(size);
            _sizeUpdateRequired = false;
        }

        if (_sizeUpdateRequired)
        {
            throw new HpackException("Header block must start with a dynamic table size update after the table size limit was reduced.");
        }

        // long: up to int.MaxValue fields of up to ~4 GB each cannot overflow it in practice.
        long listSize = 0;
        bool tooLarge = false;
        while (pos < block.Length)
        {
            byte first = block[pos];
            HeaderField field;
            int size;
            if ((first & 0x80) != 0)
            {
                // Indexed header field (6.1).
                int index = IntegerCodec.Decode(block, ref pos, 7);
                field = GetIndexed(index, out _, out size);
            }
            else if ((first & 0x40) != 0)
            {
                // Literal with incremental indexing (6.2.1).
                field = ReadLiteral(block, ref pos, 6, out int nameSize, out int valueSize);
                _table.Add(field, nameSize, valueSize);
                size = nameSize + valueSize + DynamicTable.EntryOverhead;
            }
            else if ((first & 0x20) != 0)
            {
                throw new HpackException("Dynamic table size update after a header field.");
            }
            else
            {
                // Literal without indexing (0000) or never indexed (0001, 6.2.3): same layout.
                field = ReadLiteral(block, ref pos, 4, out int nameSize, out int valueSize);
                size = nameSize + valueSize + DynamicTable.EntryOverhead;
            }

            listSize += size;
            if (listSize > _maxHeaderListSize)
            {
                // Keep decoding so the dynamic table stays in sync (RFC 9113 10.5.1) but stop
                // collecting: indexed fields could otherwise amplify a small block into huge output.
                tooLarge = true;
            }
            else
            {
                output.Add(field);
            }
        }

        if (tooLarge)
        {
            throw new HpackException(
                $"Header list size {listSize} exceeds the limit {_maxHeaderListSize}.");
        }
    }

    private HeaderField GetIndexed(int index, out int nameSize, out int size)
    {
        if (index == 0)
        {
            throw new HpackException("Header field index 0.");
        }

        if (index <= StaticTable.Count)
        {
            HeaderField field = StaticTable.Entries[index - 1];
            nameSize = field.Name.Length; // the static table is ASCII
            size = nameSize + field.Value.Length + DynamicTable.EntryOverhead;
            return field;
        }

        int dynamicIndex = index - StaticTable.Count - 1;
        if (dynamicIndex >= _table.Count)
        {
            throw new HpackException(
                $"Header field index {index} beyond the table ({StaticTable.Count + _table.Count} entries).");
        }

        ref readonly DynamicTable.Entry entry = ref _table[dynamicIndex];
        nameSize = entry.NameSize;
        size = entry.Size;
        return entry.Field;
    }

    private HeaderField ReadLiteral(ReadOnlySpan<byte> block, ref int pos, int prefixBits, out int nameSize, out int valueSize)
    {
        int nameIndex = IntegerCodec.Decode(block, ref pos, prefixBits);
        string name = nameIndex == 0
            ? ReadString(block, ref pos, out nameSize)
            : GetIndexed(nameIndex, out nameSize, out _).Name;
        string value = ReadString(block, ref pos, out valueSize);
        return new HeaderField(name, value);
    }

    private string ReadString(ReadOnlySpan<byte> block, ref int pos, out int octets)
    {
        if (pos >= block.Length)
        {
            throw new HpackException("Truncated header block: string literal expected.");
        }

        bool huffman = (block[pos] & 0x80) != 0;
        int length = IntegerCodec.Decode(block, ref pos, 7);
        if (length > block.Length - pos)
        {
            throw new HpackException($"String length {length} exceeds the remaining {block.Length - pos} octets.");
        }

        ReadOnlySpan<byte> raw = block.Slice(pos, length);
        pos += length;
        if (!huffman)
        {
            octets = length;
            return Utf8String(raw);
        }

        int max = Huffman.GetMaxDecodedLength(length);
        if (max <= MaxRetainedBuffer)
        {
            if (_huffmanBuffer.Length < max)
            {
                _huffmanBuffer = new byte[Math.Min(MaxRetainedBuffer, Math.Max(max, _huffmanBuffer.Length * 2))];
            }

            octets = Huffman.Decode(raw, _huffmanBuffer);
            return Utf8String(_huffmanBuffer.AsSpan(0, octets));
        }

        // Rare huge strings: borrow rather than keep a big buffer alive for the connection.
        byte[] rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            octets = Huffman.Decode(raw, rented);
            return Utf8String(rented.AsSpan(0, octets));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // Invalid UTF-8 becomes U+FFFD rather than an error: field validity is HTTP's business.
    private static string Utf8String(ReadOnlySpan<byte> octets) =>
        octets.IsEmpty ? string.Empty : Encoding.UTF8.GetString(octets);
}
