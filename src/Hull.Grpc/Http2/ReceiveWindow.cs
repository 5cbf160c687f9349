namespace Hull.Grpc.Http2;

/// <summary>
/// An inbound flow-control window (RFC 9113 6.9): how much the peer may still send, and how much the server has
/// consumed but not yet granted again. Grants are batched until half the window is pending, as Kestrel does, so
/// small messages cost no WINDOW_UPDATE at all. The owner serialises calls.
/// </summary>
internal struct ReceiveWindow(int size, int initial)
{
    private long _available = initial;
    private int _pending = size - initial; // the initial WINDOW_UPDATE raises the protocol default to size

    public long Available => _available;

    /// <summary>Accounts for a flow-controlled frame; false if it exceeds the window (FLOW_CONTROL_ERROR).</summary>
    public bool TryReceive(int length)
    {
        if (length > _available) return false;
        _available -= length;
        return true;
    }

    /// <summary>Marks octets consumed; returns the increment to announce in a WINDOW_UPDATE now, or 0 to wait for more.</summary>
    public int Consume(int length)
    {
        _pending += length;
        // Also granted when the peer is down to less than half: on the connection window, bodies still held by
        // handlers count as neither, and credit left pending below half could stall a large request short of its end.
        if (_pending == 0 || (_pending < size / 2 && _available >= size / 2)) return 0;
        int increment = _pending;
        _pending = 0;
        _available += increment;
        return increment;
    }

    /// <summary>Announces whatever is pending, however little (the initial raise of the connection window).</summary>
    public int Flush()
    {
        int increment = _pending;
        _pending = 0;
        _available += increment;
        return increment;
    }
}
