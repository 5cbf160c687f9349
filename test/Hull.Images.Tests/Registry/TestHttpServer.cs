using System.Net;
using System.Text;

namespace Hull.Images.Tests.Registry;

/// <summary>
/// A tiny HTTP/1.1 server on 127.0.0.1 (HttpListener) running a handler per request; for fake registries
/// and the token server. Handler exceptions become 500s so a test failure shows up as a request failure.
/// </summary>
public sealed class TestHttpServer : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<HttpListenerContext, Task> _handler;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stopping = new();
    private int _requests;

    public TestHttpServer(Func<HttpListenerContext, Task> handler)
    {
        _handler = handler;
        // HttpListener cannot bind port 0. A port below the kernel's ephemeral range (32768 and up here) is never
        // taken by the local end of an outgoing connection, which a free port handed out from that range can be by
        // the time Start binds it; another test's server may still have it, so a few tries.
        for (int attempt = 1; ; attempt++)
        {
            Port = Random.Shared.Next(20000, 32768);
            // A listener whose Start failed is not reused, and nothing a try throws may escape: CI once saw "Address already
            // in use" fail a test that only used this server, outside the old loop's catch (its log had no stack trace).
            var listener = new HttpListener();
            try
            {
                listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
                listener.Start();
                _listener = listener;
                break;
            }
            catch (HttpListenerException e)
            {
                try
                {
                    listener.Close();
                }
                catch (HttpListenerException) { }
                if (attempt == 20) throw new InvalidOperationException($"fake registry: no port after {attempt} tries (last {Port}): {e.Message}", e);
            }
        }
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    public string Host => $"127.0.0.1:{Port}";

    public string Url => $"http://{Host}";

    /// <summary>Requests handled so far.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Cancelled when the server stops, so a handler that hangs on purpose can end.</summary>
    public CancellationToken Stopping => _stopping.Token;

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        try
        {
            _listener.Stop();
            _listener.Close();
        }
        catch (HttpListenerException) { } // as in the constructor: a stop must not fail the test that used the server
        try
        {
            await _loop;
        }
        catch (ObjectDisposedException)
        {
        }
        _stopping.Dispose();
    }

    public static async Task WriteAsync(HttpListenerResponse response, int status, string body, string contentType = "application/json", params (string Name, string Value)[] headers)
    {
        response.StatusCode = status;
        response.ContentType = contentType;
        foreach ((string name, string value) in headers) response.AddHeader(name, value);
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes);
        response.Close();
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                Interlocked.Increment(ref _requests);
                try
                {
                    await _handler(context);
                }
                catch (Exception e)
                {
                    try
                    {
                        await WriteAsync(context.Response, 500, e.ToString(), "text/plain");
                    }
                    catch (Exception)
                    {
                        // the connection is gone; nothing to report to
                    }
                }
            });
        }
    }
}
