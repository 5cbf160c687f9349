using Hull.Core.Deprecations;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;
using Hull.Images;

namespace Hull.Cri;

/// <summary>Composes the gRPC server that serves CRI v1 and Hull's admin API on one socket.</summary>
public static class CriServer
{
    public const string RetiredV1Alpha2Prefix = "/runtime.v1alpha2.";
    public const string RetiredV1Alpha2Message =
        "CRI v1alpha2 was removed (containerd 2.0 and Hull serve runtime.v1 only); configure the kubelet or client to use CRI v1";

    public static GrpcServer Create(CriOptions options, RuntimeService runtime, ImageManager images, DeprecationRegistry deprecations,
        AdminService? admin, Microsoft.Extensions.Logging.ILogger? transportLog = null)
    {
        var server = new GrpcServer(new GrpcServerOptions
        {
            MaxReceiveMessageSize = options.MaxReceiveMessageSize,
            MaxSendMessageSize = options.MaxSendMessageSize,
            Http2 = new Http2ServerOptions(),
        }, transportLog)
        {
            MapException = StatusMapping.Map,
            RetiredPathCalled = _ => deprecations.Record(DeprecationIds.CriApiV1Alpha2),
        };
        Api.Cri.RuntimeService.BindService(server, runtime);
        Api.Cri.ImageService.BindService(server, new ImageService(images));
        if (admin is not null) Api.Admin.Admin.BindService(server, admin);
        server.AddRetiredPrefix(RetiredV1Alpha2Prefix, RetiredV1Alpha2Message);
        return server;
    }
}
