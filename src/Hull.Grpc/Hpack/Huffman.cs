using System.Runtime.CompilerServices;

namespace Hull.Grpc.Hpack;

/// <summary>The static Huffman code of RFC 7541 Appendix B.</summary>
internal static class Huffman
{
    public const int Eos = 256;

    /// <summary>Codes of symbols 0..255 and EOS (256), right-aligned in their bit length.</summary>
    public static ReadOnlySpan<uint> Codes =>
    [
        0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
        0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
        0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
        0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
        0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
        0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
        0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
        0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
        0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
        0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
        0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
        0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
        0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
        0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
        0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
        0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
        0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
        0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
        0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
        0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
        0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
        0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
        0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
        0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
        0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
        0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
        0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
        0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
        0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
        0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
        0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
        0x3fffffff,
    ];

    /// <summary>Code lengths in bits, indexed like <see cref="Codes"/>.</summary>
    public static ReadOnlySpan<byte> Lengths =>
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];

    // Decoder: a finite state machine consuming 4 bits per step (the nghttp2 approach). States are
    // the 256 internal nodes of the code tree (0 = root). The shortest code is 5 bits, so one
    // nibble emits at most one symbol. Each entry packs: next state (bits 0-7), emitted symbol
    // (bits 8-15) and the flags below.
    private const uint FlagSymbol = 1u << 16;
    private const uint FlagFail = 1u << 17;    // the nibble completes EOS, which must never be decoded
    private const uint FlagAccept = 1u << 18;  // stopping here leaves only valid padding (<= 7 one-bits)

    private static readonly uint[] s_decodeTable = BuildDecodeTable();

    /// <summary>Number of octets the Huffman encoding of <paramref name="source"/> takes.</summary>
    public static int GetEncodedLength(ReadOnlySpan<byte> source)
    {
        ReadOnlySpan<byte> lengths = Lengths;
        long bits = 0;
        foreach (byte b in source)
        {
            bits += lengths[b];
        }

        return (int)((bits + 7) >> 3);
    }

    /// <summary>
    /// Encodes <paramref name="source"/> into <paramref name="destination"/>, which must hold
    /// <see cref="GetEncodedLength"/> octets. Returns the octet count.
    /// </summary>
    public static int Encode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ReadOnlySpan<uint> codes = Codes;
        ReadOnlySpan<byte> lengths = Lengths;
        // Codes are at most 30 bits and we flush down to < 8 pending bits, so 64 bits never overflow.
        ulong buffer = 0;
        int pending = 0;
        int written = 0;
        foreach (byte b in source)
        {
            buffer = (buffer << lengths[b]) | codes[b];
            pending += lengths[b];
            while (pending >= 8)
            {
                pending -= 8;
                destination[written++] = (byte)(buffer >> pending);
            }
        }

        if (pending > 0)
        {
            // Pad with the most significant bits of EOS, i.e. ones (RFC 7541 5.2).
            destination[written++] = (byte)((buffer << (8 - pending)) | (0xFFu >> pending));
        }

        return written;
    }

    /// <summary>Upper bound of decoded octets for <paramref name="encodedLength"/> input octets.</summary>
    public static int GetMaxDecodedLength(int encodedLength) => (int)(((long)encodedLength * 8) / 5);

    /// <summary>
    /// Decodes into <paramref name="destination"/> (at least <see cref="GetMaxDecodedLength"/> octets).
    /// Throws <see cref="HpackException"/> on EOS in the data or invalid padding.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        uint[] table = s_decodeTable;
        uint state = 0;
        uint entry = FlagAccept;
        int written = 0;
        foreach (byte b in source)
        {
            entry = table[(state << 4) | (uint)(b >> 4)];
            if ((entry & (FlagSymbol | FlagFail)) != 0)
            {
                Emit(entry, destination, ref written);
            }

            entry = table[((entry & 0xFF) << 4) | (uint)(b & 0x0F)];
            if ((entry & (FlagSymbol | FlagFail)) != 0)
            {
                Emit(entry, destination, ref written);
            }

            state = entry & 0xFF;
        }

        if ((entry & FlagAccept) == 0)
        {
            throw new HpackException("Invalid Huffman padding.");
        }

        return written;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit(uint entry, Span<byte> destination, ref int written)
    {
        if ((entry & FlagFail) != 0)
        {
            throw new HpackException("Huffman-encoded string contains EOS.");
        }

        destination[written++] = (byte)(entry >> 8);
    }

    private static uint[] BuildDecodeTable()
    {
        ReadOnlySpan<uint> codes = Codes;
        ReadOnlySpan<byte> lengths = Lengths;

        // Build the code tree. Internal nodes are numbered 0..255; a child value >= 0 is an internal
        // node, a negative value -(symbol+1) is a leaf.
        var children = new int[256, 2];
        int nodeCount = 1;
        for (int sym = 0; sym <= Eos; sym++)
        {
            int node = 0;
            for (int bit = lengths[sym] - 1; bit >= 0; bit--)
            {
                int dir = (int)(codes[sym] >> bit) & 1;
                if (bit == 0)
                {
                    children[node, dir] = -(sym + 1);
                }
                else
                {
                    if (children[node, dir] == 0)
                    {
                        children[node, dir] = nodeCount++;
                    }

                    node = children[node, dir];
                }
            }
        }

        // Valid end states: the root, or up to 7 steps down the all-ones path (a prefix of EOS).
        var accepting = new bool[256];
        for (int node = 0, depth = 0; depth <= 7; depth++, node = children[node, 1])
        {
            accepting[node] = true;
        }

        var table = new uint[256 * 16];
        for (int state = 0; state < 256; state++)
        {
            for (int nibble = 0; nibble < 16; nibble++)
            {
                int node = state;
                uint flags = 0;
                uint symbol = 0;
                for (int bit = 3; bit >= 0; bit--)
                {
                    int next = children[node, (nibble >> bit) & 1];
                    if (next >= 0)
                    {
                        node = next;
                        continue;
                    }

                    int sym = -next - 1;
                    if (sym == Eos)
                    {
                        flags |= FlagFail;
                    }
                    else
                    {
                        flags |= FlagSymbol;
                        symbol = (uint)sym;
                    }

                    node = 0;
                }

                if (accepting[node])
                {
                    flags |= FlagAccept;
                }

                table[(state << 4) | nibble] = (uint)node | (symbol << 8) | flags;
            }
        }

        return table;
    }
}
