using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Hull.Images.Registry;

/// <summary>
/// The retry policy for registry requests: 5xx, 429, broken connections and timeouts are retried with
/// exponential backoff and jitter (honouring <c>Retry-After</c> within the maximum delay); everything else,
/// and anything once the caller has cancelled, is returned or thrown at once.
/// </summary>
internal sealed class RegistryRetry
{
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public RegistryRetry(RegistryClientOptions options)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = options.TimeProvider };
        if (options.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay,
                ShouldHandle = args => ValueTask.FromResult(
                    !args.Context.CancellationToken.IsCancellationRequested
                    && (args.Outcome.Exception is { } e ? IsTransient(e) : IsTransient(args.Outcome.Result!.StatusCode))),
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result, options.MaxRetryDelay)),
                OnRetry = args =>
                {
                    options.Logger.LogInformation("registry request failed ({Failure}); retry {Attempt} in {Delay}",
                        args.Outcome.Exception?.Message ?? $"{(int)args.Outcome.Result!.StatusCode} {args.Outcome.Result.ReasonPhrase}",
                        args.AttemptNumber + 1, args.RetryDelay);
                    args.Outcome.Result?.Dispose();
                    return default;
                },
            });
        }
        _pipeline = builder.Build();
    }

    /// <summary>Runs <paramref name="send"/>, retrying transient failures; the final response is returned whatever its status.</summary>
    public ValueTask<HttpResponseMessage> ExecuteAsync(Func<CancellationToken, ValueTask<HttpResponseMessage>> send, CancellationToken cancellationToken) =>
        _pipeline.ExecuteAsync(static (send, ct) => send(ct), send, cancellationToken);

    public static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway
            or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    public static bool IsTransient(Exception e) => e switch
    {
        // A timeout inside HttpClient (connect timeout) surfaces as a cancellation the caller did not ask for.
        OperationCanceledException => true,
        HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError or HttpRequestError.UserAuthenticationError
            or HttpRequestError.ConfigurationLimitExceeded or HttpRequestError.ExtendedConnectNotSupported
            or HttpRequestError.VersionNegotiationError } => false,
        HttpRequestException => true,
        IOException => true,
        SocketException => true,
        _ => false,
    };

    private static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeSpan max)
    {
        if (response?.Headers.RetryAfter is not { } retryAfter) return null;
        TimeSpan? delay = retryAfter.Delta ?? (retryAfter.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        return delay is { } d && d > TimeSpan.Zero && d <= max ? d : null;
    }
}
