namespace Hull.Grpc.Hpack;

/// <summary>
/// Malformed or limit-violating header block. The only exception the decoder throws on peer input;
/// HTTP/2 maps it to a COMPRESSION_ERROR connection error (RFC 9113 4.3).
/// </summary>
public sealed class HpackException : Exception
{
    public HpackException(string message) : base(message)
    {
    }
}
