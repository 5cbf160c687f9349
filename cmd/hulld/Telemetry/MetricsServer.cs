using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace Hulld.Telemetry;

/// <summary>
/// The <c>[metrics] address</c> listener (HTTP/1.1, Kestrel as the streaming server uses): Prometheus metrics at
/// <c>/v1/metrics</c> (containerd's path) in the text format, or OpenMetrics when the scraper asks for it in
/// <c>Accept</c>, and the debug pages under <c>/debug/</c>. Nothing of this is served on the CRI socket.
/// </summary>
internal sealed class MetricsServer : IAsyncDisposable
{
    public const string MetricsPath = "/v1/metrics";
    private const string TextContentType = "text/plain; version=0.0.4; charset=utf-8";
    private const string OpenMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    private readonly WebApplication _app;
    private readonly PrometheusBridge _metrics;
    private readonly DebugPages _debug;

    private MetricsServer(WebApplication app, PrometheusBridge metrics, DebugPages debug)
    {
        _app = app;
        _metrics = metrics;
        _debug = debug;
    }

    /// <summary>Where it listens, such as http://127.0.0.1:1338/.</summary>
    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");

    /// <summary>Starts listening on <paramref name="address"/> (host:port; an empty host means every interface).</summary>
    public static async Task<MetricsServer> StartAsync(string address, PrometheusBridge metrics, DebugPages debug, CancellationToken cancellationToken)
    {
        var endPoint = ParseAddress(address);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(endPoint, lo => lo.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        var server = new MetricsServer(app, metrics, debug);
        app.Run(server.HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(bound.EndsWith('/') ? bound : bound + "/");
        return server;
    }

    /// <summary><c>host:port</c> as containerd takes it: an IP address (IPv6 in brackets), <c>localhost</c>, or nothing for every interface.</summary>
    internal static IPEndPoint ParseAddress(string address)
    {
        int colon = address.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(address.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out int port) || port > 65535)
            throw new Hull.Core.HullException(Hull.Core.ErrorKind.InvalidArgument, $"[metrics] address \"{address}\" is not host:port");
        string host = address[..colon];
        IPAddress ip;
        if (host.Length == 0) ip = IPAddress.Any;
        else if (host == "localhost") ip = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host.Trim('[', ']'), out ip!))
            throw new Hull.Core.HullException(Hull.Core.ErrorKind.InvalidArgument,
                $"[metrics] address \"{address}\": \"{host}\" is not an IP address (write e.g. 127.0.0.1:1338, [::1]:1338 or :1338)");
        return new IPEndPoint(ip, port);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            response.Headers.Allow = "GET, HEAD";
            await TextAsync(response, StatusCodes.Status405MethodNotAllowed, $"method {request.Method} is not allowed\n").ConfigureAwait(false);
            return;
        }
        string path = request.Path.Value ?? "";
        var token = context.RequestAborted;
        switch (path)
        {
            case MetricsPath:
                bool openMetrics = request.Headers.Accept.Any(a => a?.Contains("application/openmetrics-text", StringComparison.OrdinalIgnoreCase) == true);
                response.ContentType = openMetrics ? OpenMetricsContentType : TextContentType;
                await _metrics.Registry.CollectAndExportAsTextAsync(response.Body,
                    openMetrics ? ExpositionFormat.OpenMetricsText : ExpositionFormat.PrometheusText, token).ConfigureAwait(false);
                return;
            case "/debug" or "/debug/":
                await TextAsync(response, StatusCodes.Status200OK, _debug.IndexPage()).ConfigureAwait(false);
                return;
            case "/debug/calls":
                await TextAsync(response, StatusCodes.Status200OK, _debug.CallsPage()).ConfigureAwait(false);
                return;
            case "/debug/runtime":
                await TextAsync(response, StatusCodes.Status200OK, DebugPages.RuntimePage()).ConfigureAwait(false);
                return;
            case "/debug/stacks":
                string? stacks = await _debug.StacksPageAsync(token).ConfigureAwait(false);
                if (stacks is null) await TextAsync(response, StatusCodes.Status429TooManyRequests, "another request is taking the thread stacks; try again\n").ConfigureAwait(false);
                else await TextAsync(response, StatusCodes.Status200OK, stacks).ConfigureAwait(false);
                return;
            default:
                await TextAsync(response, StatusCodes.Status404NotFound, $"{path} not found: metrics are at {MetricsPath}, debug pages under /debug/\n").ConfigureAwait(false);
                return;
        }
    }

    private static Task TextAsync(HttpResponse response, int status, string text)
    {
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        return response.WriteAsync(text);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
