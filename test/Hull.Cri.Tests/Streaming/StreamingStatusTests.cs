using Grpc.Core;
using Hull.Streaming;

namespace Hull.Cri.Tests.Streaming;

/// <summary>The CRI side of the streaming library: its errors reach the kubelet as the status codes the kubelet's own server uses.</summary>
public class StreamingStatusTests
{
    [Fact]
    public void A_full_streaming_token_cache_answers_ResourceExhausted()
    {
        var cache = new StreamingRequestCache(TimeSpan.FromMinutes(1), maxInFlight: 1);
        cache.Insert(new PortForwardRequest("pod1", [80]));
        var e = Assert.Throws<StreamingRequestLimitException>(() => cache.Insert(new PortForwardRequest("pod1", [80])));
        var status = Assert.NotNull(StatusMapping.Map(e));
        Assert.Equal(StatusCode.ResourceExhausted, status.StatusCode);
        Assert.Contains("maximum number of in-flight streaming requests (1)", status.Detail);
    }
}
