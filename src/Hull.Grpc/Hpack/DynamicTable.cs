namespace Hull.Grpc.Hpack;

/// <summary>
/// The HPACK dynamic table (RFC 7541 2.3.2, 4) as a ring buffer: insertion and eviction are O(1)
/// and nothing is copied. Relative index 0 is the newest entry.
/// </summary>
internal sealed class DynamicTable
{
    /// <summary>Per-entry overhead added to name and value octets (RFC 7541 4.1).</summary>
    public const int EntryOverhead = 32;

    internal struct Entry
    {
        public HeaderField Field;
        public int NameSize; // octets; stored because strings may be non-ASCII
        public int Size;     // name octets + value octets + 32
    }

    private Entry[] _ring;
    private int _newest = -1; // slot of the newest entry

    public DynamicTable(int maxSize)
    {
        MaxSize = maxSize;
        _ring = new Entry[8];
    }

    public int Count { get; private set; }

    /// <summary>Sum of entry sizes in octets.</summary>
    public int Size { get; private set; }

    public int MaxSize { get; private set; }

    /// <summary>Total entries ever inserted; gives each entry a stable id (the encoder uses it).</summary>
    public long InsertCount { get; private set; }

    /// <param name="index">0 = newest, Count-1 = oldest.</param>
    public ref readonly Entry this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }

            int slot = _newest - index;
            if (slot < 0)
            {
                slot += _ring.Length;
            }

            return ref _ring[slot];
        }
    }

    public void SetMaxSize(int maxSize)
    {
        MaxSize = maxSize;
        while (Size > maxSize)
        {
            EvictOldest();
        }
    }

    /// <summary>
    /// Inserts after evicting as needed. An entry larger than <see cref="MaxSize"/> empties the table
    /// and is not inserted (RFC 7541 4.4).
    /// </summary>
    public void Add(HeaderField field, int nameSize, int valueSize)
    {
        int size = nameSize + valueSize + EntryOverhead;
        while (Count > 0 && Size + size > MaxSize)
        {
            EvictOldest();
        }

        if (size > MaxSize)
        {
            return;
        }

        if (Count == _ring.Length)
        {
            Grow();
        }

        _newest++;
        if (_newest == _ring.Length)
        {
            _newest = 0;
        }

        _ring[_newest] = new Entry { Field = field, NameSize = nameSize, Size = size };
        Count++;
        Size += size;
        InsertCount++;
    }

    public ref readonly Entry Oldest => ref this[Count - 1];

    public void EvictOldest()
    {
        int slot = _newest - (Count - 1);
        if (slot < 0)
        {
            slot += _ring.Length;
        }

        Size -= _ring[slot].Size;
        _ring[slot] = default; // drop string references for the GC
        Count--;
    }

    /// <summary>Independent copy (strings are immutable and shared).</summary>
    public DynamicTable Clone()
    {
        var copy = (DynamicTable)MemberwiseClone();
        copy._ring = (Entry[])_ring.Clone();
        return copy;
    }

    private void Grow()
    {
        // Entries are at least 32 octets, so the ring never needs more than MaxSize/32 slots; grow
        // lazily because most connections use a fraction of the table.
        var bigger = new Entry[_ring.Length * 2];
        for (int i = 0; i < Count; i++)
        {
            // Oldest first, so the newest lands at Count-1.
            bigger[i] = this[Count - 1 - i];
        }

        _ring = bigger;
        _newest = Count - 1;
    }
}
