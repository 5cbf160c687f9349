namespace Hull.Grpc.Http2;

/// <summary>
/// A transport whose receiving thread runs the read loop's continuation, and that gives receiving to a new thread
/// when that one is held (<see cref="SocketTransport"/>). It calls <see cref="HandedOver"/> when it does.
/// </summary>
internal interface IHandsOverReceiving
{
    Action? HandedOver { set; }
}
