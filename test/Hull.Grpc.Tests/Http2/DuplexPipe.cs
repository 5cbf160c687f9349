using System.IO.Pipelines;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Two pipes as the one connection an in-memory Http2Connection is served over.</summary>
internal sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
