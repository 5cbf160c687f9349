namespace Hull.Grpc.Hpack;

/// <summary>Prefix-coded integers (RFC 7541 5.1).</summary>
internal static class IntegerCodec
{
    /// <summary>Worst case for a 31-bit value: prefix octet + 5 continuation octets.</summary>
    public const int MaxLength = 6;

    /// <summary>
    /// Reads an integer whose first octet is <paramref name="source"/>[<paramref name="position"/>],
    /// using its low <paramref name="prefixBits"/> bits. Values above int.MaxValue are rejected so that
    /// later length and index arithmetic cannot overflow.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> source, ref int position, int prefixBits)
    {
        int pos = position;
        int mask = (1 << prefixBits) - 1;
        int value = source[pos++] & mask;
        if (value < mask)
        {
            position = pos;
            return value;
        }

        // At most 5 continuation octets: 5*7 = 35 bits already exceeds 31, so anything longer is
        // either overflow or pointless zero padding that only serves to waste our time.
        long result = value;
        for (int shift = 0; shift <= 28; shift += 7)
        {
            if ((uint)pos >= (uint)source.Length)
            {
                throw new HpackException("Truncated integer.");
            }

            byte b = source[pos++];
            result += (long)(b & 0x7F) << shift;
            if (result > int.MaxValue)
            {
                throw new HpackException("Integer overflow.");
            }

            if ((b & 0x80) == 0)
            {
                position = pos;
                return (int)result;
            }
        }

        throw new HpackException("Integer encoding longer than 6 octets.");
    }

    /// <summary>
    /// Writes <paramref name="value"/> with a <paramref name="prefixBits"/>-bit prefix; <paramref name="flags"/>
    /// supplies the representation bits above the prefix. Returns the octet count.
    /// </summary>
    public static int Encode(Span<byte> destination, int value, int prefixBits, byte flags)
    {
        int mask = (1 << prefixBits) - 1;
        if (value < mask)
        {
            destination[0] = (byte)(flags | value);
            return 1;
        }

        destination[0] = (byte)(flags | mask);
        uint rest = (uint)(value - mask);
        int i = 1;
        while (rest >= 0x80)
        {
            destination[i++] = (byte)(rest | 0x80);
            rest >>= 7;
        }

        destination[i++] = (byte)rest;
        return i;
    }
}
