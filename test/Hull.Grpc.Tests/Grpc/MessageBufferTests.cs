using Google.Protobuf;
using Hull.Api.Cri;
using Hull.Grpc.Marshalling;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>The serialization context both servers run generated marshallers through.</summary>
public class MessageBufferTests
{
    private static readonly Marshaller<VersionResponse> GeneratedMarshaller = VersionMethod.Capture().ResponseMarshaller;

    private static VersionResponse Response(int nameLength) => new() { Version = "v", RuntimeName = new string('n', nameLength) };

    [Theory]
    [InlineData(0, 0)]
    [InlineData(5, 1)]
    [InlineData(5, 100_000)]
    public void GeneratedMarshallerWritesTheMessageAfterTheHeadroom(int headroom, int nameLength)
    {
        var message = Response(nameLength);
        using var buffer = new MessageBuffer(headroom);
        GeneratedMarshaller.ContextualSerializer(message, buffer);
        Assert.Equal(message.CalculateSize(), buffer.PayloadLength);
        Assert.Equal(headroom + buffer.PayloadLength, buffer.Frame.Length);
        Assert.Equal(message, VersionResponse.Parser.ParseFrom(buffer.Frame.Span[headroom..]));
    }

    [Fact]
    public void SimpleMarshallerHandsOverAnArray()
    {
        var message = Response(10);
        using var buffer = new MessageBuffer(headroom: 5);
        Marshallers.Create<VersionResponse>(m => m.ToByteArray(), VersionResponse.Parser.ParseFrom).ContextualSerializer(message, buffer);
        Assert.Equal(message, VersionResponse.Parser.ParseFrom(buffer.Frame.Span[5..]));
    }

    [Fact]
    public void WriterWithoutAnnouncedLengthGrows()
    {
        using var buffer = new MessageBuffer(headroom: 5);
        var writer = buffer.GetBufferWriter();
        for (int i = 0; i < 1000; i++)
        {
            var span = writer.GetSpan(100);
            span[..100].Fill((byte)i);
            writer.Advance(100);
        }
        buffer.Complete();
        Assert.Equal(100_000, buffer.PayloadLength);
        Assert.Equal(unchecked((byte)999), buffer.Frame.Span[^1]);
        Assert.Equal((byte)0, buffer.Frame.Span[5]);
    }

    [Fact]
    public void MessageOverTheLimitIsRefusedBeforeItIsWritten()
    {
        using var buffer = new MessageBuffer(headroom: 5, maxPayloadLength: 100);
        var e = Assert.Throws<RpcException>(() => GeneratedMarshaller.ContextualSerializer(Response(200), buffer));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("100 bytes", e.Status.Detail);
    }

    [Fact]
    public void FrameBeforeCompleteIsAnError()
    {
        using var buffer = new MessageBuffer(headroom: 5);
        Assert.Throws<InvalidOperationException>(() => buffer.Frame);
    }

    [Fact]
    public void PayloadReaderHandsTheGeneratedMarshallerTheBytes()
    {
        var message = Response(300);
        var bytes = message.ToByteArray();
        Assert.Equal(message, GeneratedMarshaller.ContextualDeserializer(new PayloadReader(bytes.AsMemory())));
    }
}

/// <summary>The generated Method of RuntimeService/Version (generated code keeps it private; BindService hands it out).</summary>
internal sealed class VersionMethod : ServiceBinderBase
{
    private Method<VersionRequest, VersionResponse>? _method;

    public static Method<VersionRequest, VersionResponse> Capture()
    {
        var binder = new VersionMethod();
        RuntimeService.BindService(binder, new TestRuntimeService());
        return binder._method!;
    }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
    {
        if (method is Method<VersionRequest, VersionResponse> version && version.Name == "Version") _method = version;
    }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) { }
}
