using System.Buffers;
using System.Text;

namespace Hull.Grpc.Hpack;

/// <summary>
/// Encodes header blocks (RFC 7541) for one HTTP/2 connection direction. Not thread-safe; blocks
/// must be sent in the order they were encoded because they share the dynamic table.
/// </summary>
public sealed class HpackEncoder
{
    private const int MaxRetainedBuffer = 16 * 1024;

    private readonly int _sizeLimit;
    private readonly DynamicTable _table;

    // Newest dynamic entry id (DynamicTable.InsertCount at insertion) per field and per name, so
    // lookups are O(1) instead of a table scan. Entries are removed when their id is evicted.
    private readonly Dictionary<(string Name, string Value), long> _fieldIds = new();
    private readonly Dictionary<string, long> _nameIds = new(StringComparer.Ordinal);

    private bool _sizeUpdatePending;
    private int _smallestPendingSize;
    private byte[] _scratch = new byte[256];

    /// <param name="maxDynamicTableSize">
    /// Table size both endpoints start with (RFC 7541 default 4096); also the most this encoder will
    /// use even if the peer allows more, which bounds its memory.
    /// </param>
    public HpackEncoder(int maxDynamicTableSize = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        _sizeLimit = maxDynamicTableSize;
        _table = new DynamicTable(maxDynamicTableSize);
    }

    /// <summary>Tests turn this off to reproduce the RFC 7541 Appendix C examples without Huffman.</summary>
    internal bool UseHuffman { get; set; } = true;

    internal DynamicTable Table => _table;

    /// <summary>
    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE. If our table size changes, the next block
    /// starts with a dynamic table size update (RFC 7541 4.2).
    /// </summary>
    public void SetMaxDynamicTableSize(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        int newSize = Math.Min(size, _sizeLimit);
        if (newSize == _table.MaxSize)
        {
            return;
        }

        // Several changes between two blocks: the decoder must see the smallest one too, so that
        // it evicts exactly what we evicted (RFC 7541 4.2).
        _smallestPendingSize = _sizeUpdatePending ? Math.Min(_smallestPendingSize, newSize) : newSize;
        _sizeUpdatePending = true;
        while (_table.Size > newSize)
        {
            EvictOldest();
        }

        _table.SetMaxSize(newSize);
    }

    /// <summary>Encodes one header block into <paramref name="output"/>.</summary>
    public void Encode(IReadOnlyList<HeaderField> headers, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(output);

        if (_sizeUpdatePending)
        {
            if (_smallestPendingSize < _table.MaxSize)
            {
                WriteInteger(output, _smallestPendingSize, 5, 0x20);
            }

            WriteInteger(output, _table.MaxSize, 5, 0x20);
            _sizeUpdatePending = false;
        }

        for (int i = 0; i < headers.Count; i++)
        {
            EncodeField(headers[i], output);
        }
    }

    private void EncodeField(HeaderField field, IBufferWriter<byte> output)
    {
        // default(HeaderField) has null strings; encode them as empty rather than crash mid-block.
        string name = field.Name ?? string.Empty;
        string value = field.Value ?? string.Empty;

        int nameIndex = StaticTable.Find(name, value, out bool exact);
        if (exact)
        {
            WriteInteger(output, nameIndex, 7, 0x80);
            return;
        }

        bool sensitive = IsSensitive(name, value);
        if (!sensitive && _fieldIds.TryGetValue((name, value), out long id))
        {
            WriteInteger(output, DynamicIndex(id), 7, 0x80);
            return;
        }

        // Static names first: their index never changes and is usually a single octet.
        if (nameIndex == 0 && _nameIds.TryGetValue(name, out long nameId))
        {
            nameIndex = DynamicIndex(nameId);
        }

        int nameSize = Encoding.UTF8.GetByteCount(name);
        int valueSize = Encoding.UTF8.GetByteCount(value);
        int entrySize = nameSize + valueSize + DynamicTable.EntryOverhead;

        byte flags;
        int prefixBits;
        bool insert = false;
        if (sensitive)
        {
            flags = 0x10; // never indexed (6.2.3): intermediaries must not index it either
            prefixBits = 4;
        }
        else if (ShouldIndex(name, entrySize))
        {
            flags = 0x40; // incremental indexing (6.2.1)
            prefixBits = 6;
            insert = true;
        }
        else
        {
            flags = 0x00; // without indexing (6.2.2)
            prefixBits = 4;
        }

        int maxLength = IntegerCodec.MaxLength + IntegerCodec.MaxLength + valueSize;
        if (nameIndex == 0)
        {
            maxLength += IntegerCodec.MaxLength + nameSize;
        }

        Span<byte> span = output.GetSpan(maxLength);
        int written = IntegerCodec.Encode(span, nameIndex, prefixBits, flags);
        if (nameIndex == 0)
        {
            written += WriteString(span[written..], name, nameSize);
        }

        written += WriteString(span[written..], value, valueSize);
        output.Advance(written);

        if (insert)
        {
            Insert(new HeaderField(name, value), nameSize, valueSize, entrySize);
        }
    }

    private bool ShouldIndex(string name, int entrySize)
    {
        // An entry that fills most of the table would flush everything useful for one field.
        if (entrySize > _table.MaxSize / 4 * 3)
        {
            return false;
        }

        // Values that are unique per message only pollute the table (same policy as nghttp2,
        // except :path, which repeats for every call to a gRPC method).
        return name switch
        {
            "content-length" or "age" or "etag" or "if-modified-since" or "if-none-match" or "grpc-timeout" => false,
            _ => true,
        };
    }

    // Credentials are never indexed so they cannot be probed through compression (RFC 7541 7.1.3);
    // short cookies are guessable, long ones are worth compressing.
    private static bool IsSensitive(string name, string value) => name switch
    {
        "authorization" or "proxy-authorization" => true,
        "cookie" => value.Length < 20,
        _ => false,
    };

    private int DynamicIndex(long id) => StaticTable.Count + 1 + (int)(_table.InsertCount - 1 - id);

    private void Insert(HeaderField field, int nameSize, int valueSize, int entrySize)
    {
        while (_table.Count > 0 && _table.Size + entrySize > _table.MaxSize)
        {
            EvictOldest();
        }

        if (entrySize > _table.MaxSize)
        {
            return; // not stored (RFC 7541 4.4); ShouldIndex normally prevents this
        }

        _table.Add(field, nameSize, valueSize);
        long id = _table.InsertCount - 1;
        _fieldIds[(field.Name, field.Value)] = id;
        _nameIds[field.Name] = id;
    }

    private void EvictOldest()
    {
        long id = _table.InsertCount - _table.Count;
        HeaderField field = _table.Oldest.Field;
        // Only forget the key if no newer duplicate took it over.
        if (_fieldIds.TryGetValue((field.Name, field.Value), out long fieldId) && fieldId == id)
        {
            _fieldIds.Remove((field.Name, field.Value));
        }

        if (_nameIds.TryGetValue(field.Name, out long nameId) && nameId == id)
        {
            _nameIds.Remove(field.Name);
        }

        _table.EvictOldest();
    }

    private static void WriteInteger(IBufferWriter<byte> output, int value, int prefixBits, byte flags)
    {
        Span<byte> span = output.GetSpan(IntegerCodec.MaxLength);
        output.Advance(IntegerCodec.Encode(span, value, prefixBits, flags));
    }

    private int WriteString(Span<byte> destination, string value, int octets)
    {
        if (octets == 0)
        {
            destination[0] = 0;
            return 1;
        }

        if (octets > MaxRetainedBuffer)
        {
            // Rare huge values: borrow rather than keep a big buffer alive for the connection.
            byte[] rented = ArrayPool<byte>.Shared.Rent(octets);
            try
            {
                return WriteString(destination, value, rented.AsSpan(0, octets));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        if (_scratch.Length < octets)
        {
            _scratch = new byte[Math.Min(MaxRetainedBuffer, Math.Max(octets, _scratch.Length * 2))];
        }

        return WriteString(destination, value, _scratch.AsSpan(0, octets));
    }

    private int WriteString(Span<byte> destination, string value, Span<byte> raw)
    {
        int octets = raw.Length;
        Encoding.UTF8.GetBytes(value, raw);
        if (UseHuffman)
        {
            int huffmanLength = Huffman.GetEncodedLength(raw);
            if (huffmanLength < octets)
            {
                int n = IntegerCodec.Encode(destination, huffmanLength, 7, 0x80);
                return n + Huffman.Encode(raw, destination[n..]);
            }
        }

        int written = IntegerCodec.Encode(destination, octets, 7, 0x00);
        raw.CopyTo(destination[written..]);
        return written + octets;
    }
}
