using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Proto.Collector.Trace.V1;
using OpenTelemetry.Proto.Trace.V1;

namespace Hull.E2E.Fixtures;

/// <summary>One span as received, with the service that sent it and its instrumentation scope.</summary>
public sealed record ReceivedSpan(Span Span, string Service, string Scope)
{
    public string Name => Span.Name;
    public string TraceId => Convert.ToHexStringLower(Span.TraceId.Span);
    public string SpanId => Convert.ToHexStringLower(Span.SpanId.Span);
    public string ParentSpanId => Convert.ToHexStringLower(Span.ParentSpanId.Span);

    public string? Attribute(string key) => Span.Attributes.FirstOrDefault(a => a.Key == key)?.Value is { } v
        ? v.ValueCase == OpenTelemetry.Proto.Common.V1.AnyValue.ValueOneofCase.StringValue ? v.StringValue : v.ToString()
        : null;
}

/// <summary>
/// A minimal OTLP/HTTP trace receiver (the OpenTelemetry Collector is not packaged): POST /v1/traces with a protobuf
/// <c>ExportTraceServiceRequest</c>, answered with an empty <c>ExportTraceServiceResponse</c>. It keeps every span.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ReceivedSpan> _spans = new();
    private readonly List<string> _errors = new();

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>The base URL to put in OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/traces).</summary>
    public Uri Endpoint { get; private set; } = new("http://127.0.0.1/");

    public IReadOnlyList<ReceivedSpan> Spans
    {
        get { lock (_spans) return _spans.ToArray(); }
    }

    /// <summary>Requests that were not valid OTLP (they fail the test that looks).</summary>
    public IReadOnlyList<string> Errors
    {
        get { lock (_spans) return _errors.ToArray(); }
    }

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Endpoint = new Uri(address);
        return receiver;
    }

    /// <summary>Waits until <paramref name="done"/> holds for the spans received, or fails with what did arrive.</summary>
    public async Task<IReadOnlyList<ReceivedSpan>> WaitForAsync(Func<IReadOnlyList<ReceivedSpan>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(Spans))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the spans expected did not arrive within {timeout}; received: {string.Join(", ", Spans.Select(s => s.Name))}");
            await Task.Delay(100);
        }
        return Spans;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (context.Request.Path != "/v1/traces" || !HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.StatusCode = 404;
            return;
        }
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        try
        {
            if (context.Request.ContentType != "application/x-protobuf")
                throw new InvalidDataException($"content-type {context.Request.ContentType}, expected application/x-protobuf");
            var request = ExportTraceServiceRequest.Parser.ParseFrom(body.ToArray());
            lock (_spans)
            {
                foreach (var resource in request.ResourceSpans)
                {
                    string service = resource.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value.StringValue ?? "";
                    foreach (var scope in resource.ScopeSpans)
                        foreach (var span in scope.Spans)
                            _spans.Add(new ReceivedSpan(span, service, scope.Scope?.Name ?? ""));
                }
            }
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidDataException)
        {
            lock (_spans) _errors.Add(e.Message);
            context.Response.StatusCode = 400;
            return;
        }
        context.Response.ContentType = "application/x-protobuf";
        await context.Response.Body.WriteAsync(new ExportTraceServiceResponse().ToByteArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
