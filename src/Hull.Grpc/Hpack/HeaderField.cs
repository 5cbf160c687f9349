namespace Hull.Grpc.Hpack;

/// <summary>One decoded or to-be-encoded header field.</summary>
public readonly record struct HeaderField(string Name, string Value);
