using Hull.Api.Cri;
using Hull.Config;
using Hull.Core.Deprecations;
using Hull.Core.Events;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;

namespace Hull.Cri;

/// <summary>Composes the gRPC server that serves CRI v1 and Hull's admin API on one socket.</summary>
public static class CriServer
{
    public const string RetiredV1Alpha2Prefix = "/runtime.v1alpha2.";
    public const string RetiredV1Alpha2Message =
        "CRI v1alpha2 was removed (containerd 2.0 and Hull serve runtime.v1 only); configure the kubelet or client to use CRI v1";

    public static GrpcServer Create(HullConfig config, IEnumerable<(Google.Protobuf.Reflection.ServiceDescriptor, object)> extraServices,
        EventBroadcaster<ContainerEvent> events, DeprecationRegistry deprecations, Hull.Images.ImageManager images,
        Hull.Sandbox.SandboxManager? sandboxes = null, Hull.Sandbox.Cni.CniManager? cni = null, Containers.ContainerManager? containers = null,
        Streaming.StreamingServer? streaming = null, Microsoft.Extensions.Logging.ILogger? transportLog = null)
    {
        var server = new GrpcServer(new GrpcServerOptions
        {
            MaxReceiveMessageSize = config.Grpc.MaxRecvMessageSize,
            MaxSendMessageSize = config.Grpc.MaxSendMessageSize,
            Http2 = new Http2ServerOptions(),
        }, transportLog)
        {
            MapException = StatusMapping.Map,
            RetiredPathCalled = _ => deprecations.Record(DeprecationIds.CriApiV1Alpha2),
        };
        var probe = new NodeProbe();
        var services = ApiReflection.Descriptor.Services;
        server.AddService(services.Single(s => s.Name == "RuntimeService"), new RuntimeService(config, probe, events, deprecations)
        {
            Sandboxes = sandboxes,
            ContainerManager = containers,
            StreamingServer = streaming,
            Cni = cni ?? new Hull.Sandbox.Cni.CniManager(Hull.Sandbox.Cni.CniOptions.From(config)),
        });
        server.AddService(services.Single(s => s.Name == "ImageService"), new ImageService(images));
        foreach (var (descriptor, implementation) in extraServices) server.AddService(descriptor, implementation);
        server.AddRetiredPrefix(RetiredV1Alpha2Prefix, RetiredV1Alpha2Message);
        return server;
    }
}
