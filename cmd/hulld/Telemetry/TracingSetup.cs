using Hull.Core;
using Hulld.Composition;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Hulld.Telemetry;

/// <summary>
/// Tracing as containerd 2.x configures it: on only when an OTLP endpoint is set (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c> or
/// <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>, else the deprecated <c>[plugins.'io.containerd.tracing.processor.v1.otlp']
/// endpoint</c>) and <c>OTEL_SDK_DISABLED</c> is not true; <c>http/protobuf</c> unless a protocol is set; the service
/// name from <c>OTEL_SERVICE_NAME</c>, else the deprecated <c>service_name</c>, else <c>hulld</c>; the sampler from
/// <c>OTEL_TRACES_SAMPLER(_ARG)</c> (read by the SDK), else the deprecated <c>sampling_ratio</c> (parent-based), else
/// parent-based always-on. Every other <c>OTEL_*</c> variable (headers, timeouts, batch sizes) is the SDK's.
/// With tracing off no listener is attached to Hull's ActivitySources, so starting a span costs a flag check.
/// </summary>
internal static class TracingSetup
{
    public const string DefaultServiceName = "hulld";

    /// <summary>What tracing will do, or null (with the reason) when it is off.</summary>
    internal sealed record Plan(string? ConfigEndpoint, OtlpExportProtocol? Protocol, string ServiceName, double? SamplingRatio);

    internal static Plan? Decide(TracingOptions options, Func<string, string?> env, out string why)
    {
        if (bool.TryParse(env("OTEL_SDK_DISABLED"), out bool disabled) && disabled)
        {
            why = "OTEL_SDK_DISABLED is true";
            return null;
        }
        if (env("OTEL_TRACES_EXPORTER") is { Length: > 0 } exporter && exporter != "otlp")
        {
            why = exporter == "none" ? "OTEL_TRACES_EXPORTER is none" : $"OTEL_TRACES_EXPORTER \"{exporter}\" is not supported (only otlp)";
            return null;
        }
        bool envEndpoint = !string.IsNullOrEmpty(env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) || !string.IsNullOrEmpty(env("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if (!envEndpoint && options.Endpoint.Length == 0)
        {
            why = "no OTLP endpoint is configured";
            return null;
        }
        string protocolName = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") is { Length: > 0 } p ? p
            : env("OTEL_EXPORTER_OTLP_PROTOCOL") is { Length: > 0 } q ? q
            : options.Protocol;
        OtlpExportProtocol? protocol = protocolName switch
        {
            "" or "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            "grpc" => OtlpExportProtocol.Grpc,
            _ => null,
        };
        if (protocol is null)
        {
            why = $"OTLP protocol \"{protocolName}\" is not supported (http/protobuf or grpc)";
            return null;
        }
        string? configEndpoint = envEndpoint ? null : ConfigEndpoint(options, protocol.Value);
        string service = env("OTEL_SERVICE_NAME") is { Length: > 0 } s ? s : options.ServiceName.Length > 0 ? options.ServiceName : DefaultServiceName;
        double? ratio = string.IsNullOrEmpty(env("OTEL_TRACES_SAMPLER")) && options.SamplingRatio > 0 ? options.SamplingRatio : null;
        why = "";
        return new Plan(configEndpoint, protocol, service, ratio);
    }

    /// <summary>containerd 1.x's endpoint was host:port (with <c>insecure</c> for plain HTTP) or a URL; over HTTP the traces path is added.</summary>
    private static string ConfigEndpoint(TracingOptions options, OtlpExportProtocol protocol)
    {
        string endpoint = options.Endpoint.Contains("://", StringComparison.Ordinal)
            ? options.Endpoint
            : (options.Insecure ? "http://" : "https://") + options.Endpoint;
        if (protocol == OtlpExportProtocol.HttpProtobuf && new Uri(endpoint).AbsolutePath is "/" or "") endpoint = endpoint.TrimEnd('/') + "/v1/traces";
        return endpoint;
    }

    /// <summary>Starts exporting Hull's spans, or returns null when tracing is off.</summary>
    public static TracerProvider? Start(TracingOptions options, ILogger log)
    {
        var plan = Decide(options, Environment.GetEnvironmentVariable, out string why);
        if (plan is null)
        {
            log.Log(why.StartsWith("no OTLP", StringComparison.Ordinal) ? LogLevel.Debug : LogLevel.Warning, "tracing is off: {Reason}", why);
            return null;
        }
        var builder = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(plan.ServiceName, serviceVersion: HullInfo.Version))
            .AddSource(HullMeters.SourcePattern)
            .AddOtlpExporter(o =>
            {
                // The SDK has read OTEL_EXPORTER_OTLP_*; only what it lacks comes from Hull's defaults and config.
                o.Protocol = plan.Protocol!.Value;
                if (plan.ConfigEndpoint is not null) o.Endpoint = new Uri(plan.ConfigEndpoint);
            });
        if (plan.SamplingRatio is { } ratio) builder.SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(ratio)));
        var provider = builder.Build();
        log.LogInformation("tracing: exporting spans over OTLP ({Protocol}) as service {Service}", plan.Protocol, plan.ServiceName);
        return provider;
    }
}
