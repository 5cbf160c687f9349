using System.Net;
using System.Text.Json;
using Hull.Core;
using Hull.Core.Deprecations;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Hull.Kube;

/// <summary>
/// Publishes the deprecation condition (<see cref="DeprecationCondition"/>) on this node's Node object: at start, every
/// <see cref="NodeConditionsOptions.ResyncInterval"/> (which moves <c>lastHeartbeatTime</c>), and at once when a warning
/// that is not published yet is recorded (<see cref="OnRecorded"/>). <c>lastTransitionTime</c> moves only when the
/// status changes. A Warning Event on the Node announces each new warning. While the API server cannot be reached (or
/// the Node is not registered yet) it retries with exponential backoff; an error it cannot retry (RBAC, credentials) is
/// logged, shown in <see cref="Status"/> and tried again at the next resync. It runs on its own task and is never on
/// the path of a CRI call.
/// </summary>
public sealed class NodeConditionReporter : IDeprecationPublisher
{
    /// <summary>Longest wait between retries while the API server is unreachable.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);
    /// <summary>Who sets the condition, in managedFields and on Events.</summary>
    public const string Component = "hull";
    /// <summary>Reason of the Event that announces a new warning.</summary>
    public const string NewWarningReason = "DeprecatedFeatureInUse";
    /// <summary>The API's limit on an Event's message (events.k8s.io's note).</summary>
    private const int EventMessageLimit = 1024;

    private readonly NodeConditionsOptions _options;
    private readonly Func<CancellationToken, Task<IReadOnlyList<DeprecationWarning>>> _source;
    private readonly KubeEnvironment _environment;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly ResiliencePipeline _retry;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly HashSet<string> _announced = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ignored;
    private IKubernetes? _client;
    private DeprecationPublication _status;
    private DateTimeOffset _transition;
    private string? _loggedError;

    /// <param name="source">The recorded warnings (all of them; the ignored IDs are left out here).</param>
    public NodeConditionReporter(NodeConditionsOptions options, Func<CancellationToken, Task<IReadOnlyList<DeprecationWarning>>> source,
        ILogger logger, KubeEnvironment? environment = null, TimeProvider? clock = null)
    {
        _options = options;
        _source = source;
        _environment = environment ?? KubeEnvironment.Current;
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
        _ignored = options.IgnoredDeprecations.ToHashSet(StringComparer.Ordinal);
        NodeName = _environment.ResolveNodeName(options.NodeName);
        _status = new DeprecationPublication(KubeCredentials.Describe(options.Kubeconfig), NodeName, "", null, null, null, null);
        _retry = new ResiliencePipelineBuilder { TimeProvider = _clock }.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(
                !args.Context.CancellationToken.IsCancellationRequested && args.Outcome.Exception is { } e && IsTransient(e)),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromSeconds(1),
            MaxDelay = options.ResyncInterval < MaxRetryDelay ? options.ResyncInterval : MaxRetryDelay,
            OnRetry = args =>
            {
                Failed(args.Outcome.Exception!, $"retrying in {args.RetryDelay.TotalSeconds:F1} s");
                return default;
            },
        }).Build();
    }

    public string NodeName { get; }

    public DeprecationPublication Status => Volatile.Read(ref _status);

    /// <summary>For <see cref="DeprecationRegistry.Recorded"/>: a counted warning that is not on the Node yet is published now.</summary>
    public void OnRecorded(DeprecationWarning warning)
    {
        if (!_ignored.Contains(warning.Id) && !Status.IsPublished(warning.Id)) Wake();
    }

    /// <summary>Publishes now instead of at the next resync.</summary>
    public void Wake()
    {
        try { _wake.Release(); } catch (SemaphoreFullException) { }
    }

    /// <summary>Publishes until <paramref name="cancellationToken"/> is cancelled; never throws otherwise.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        _logger.LogInformation("node conditions: publishing {Type} on node {Node} every {Interval} ({Credentials})",
            DeprecationCondition.Type, NodeName, _options.ResyncInterval, Status.Mode);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _retry.ExecuteAsync(PublishAsync, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                Failed(e, $"trying again in {_options.ResyncInterval}");
            }
            try
            {
                await _wake.WaitAsync(_options.ResyncInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async ValueTask PublishAsync(CancellationToken cancellationToken)
    {
        var client = _client ??= Connect();
        var warnings = DeprecationCondition.Active(await _source(cancellationToken).ConfigureAwait(false), _ignored);
        var state = DeprecationCondition.Evaluate(warnings);
        var previous = Status;
        var now = _clock.GetUtcNow();
        if (previous.Published is null || previous.Published.NoDeprecations != state.NoDeprecations) _transition = now;
        var patch = NodeConditionPatch.Build(state, now, _transition);
        try
        {
            await client.CoreV1.PatchNodeStatusAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.StrategicMergePatch), NodeName,
                fieldManager: Component, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new NodePatchException(NodeName, client.BaseUri, e);
        }
        Volatile.Write(ref _status, previous with { Server = client.BaseUri.ToString(), Published = state, PublishedAt = now, Error = null, ErrorAt = null });
        if (previous.Published is not { } last || last.Message != state.Message || previous.Error is not null)
            _logger.LogInformation("node conditions: node {Node} has {Type}={Status} ({Reason}): {Message}", NodeName, DeprecationCondition.Type,
                state.NoDeprecations ? "True" : "False", state.Reason, state.Message);
        else
            _logger.LogDebug("node conditions: heartbeat of {Type} on node {Node}", DeprecationCondition.Type, NodeName);
        _loggedError = null;
        await AnnounceAsync(client, warnings, now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One Warning Event on the Node per warning not announced before by this process.</summary>
    private async Task AnnounceAsync(IKubernetes client, IReadOnlyList<DeprecationWarning> warnings, DateTimeOffset now, CancellationToken cancellationToken)
    {
        foreach (var warning in warnings.Where(w => !_announced.Contains(w.Id)))
        {
            try
            {
                await client.CoreV1.CreateNamespacedEventAsync(NodeEvent(warning, now), "default", cancellationToken: cancellationToken).ConfigureAwait(false);
                _announced.Add(warning.Id);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The condition is what matters; the event is tried again at the next resync.
                _logger.LogWarning("node conditions: cannot create the Event for {Id} on node {Node}: {Error}", warning.Id, NodeName, Describe(e));
            }
        }
    }

    /// <summary>An Event about this Node as the kubelet makes them (the node name as its UID, in namespace default).</summary>
    private Corev1Event NodeEvent(DeprecationWarning warning, DateTimeOffset now)
    {
        string message = DeprecationCondition.Entry(warning);
        if (message.Length > EventMessageLimit) message = message[..(EventMessageLimit - 3)] + "...";
        return new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = NodeName + ".hull-deprecation-", NamespaceProperty = "default" },
            InvolvedObject = new V1ObjectReference { Kind = "Node", ApiVersion = "v1", Name = NodeName, Uid = NodeName },
            Type = "Warning",
            Reason = NewWarningReason,
            Message = message,
            Source = new V1EventSource { Component = Component, Host = NodeName },
            ReportingComponent = Component,
            ReportingInstance = NodeName,
            FirstTimestamp = now.UtcDateTime,
            LastTimestamp = now.UtcDateTime,
            Count = 1,
        };
    }

    private IKubernetes Connect()
    {
        var config = KubeCredentials.Load(_options.Kubeconfig, _environment);
        var client = new Kubernetes(config);
        Volatile.Write(ref _status, Status with { Server = client.BaseUri.ToString() });
        return client;
    }

    private void Failed(Exception e, string next)
    {
        string error = Describe(e);
        Volatile.Write(ref _status, Status with { Error = error, ErrorAt = _clock.GetUtcNow() });
        if (error == _loggedError)
        {
            _logger.LogDebug("node conditions: {Error}; {Next}", error, next);
            return;
        }
        _loggedError = error;
        _logger.LogError("node conditions: {Error}; {Next}", error, next);
    }

    /// <summary>Unreachable, overloaded or not there yet (the kubelet registers the Node after hulld starts).</summary>
    internal static bool IsTransient(Exception e) => e switch
    {
        NodePatchException p => IsTransient(p.InnerException!),
        HttpOperationException h => h.Response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError,
        HttpRequestException or IOException or TimeoutException or OperationCanceledException => true,
        DeprecationSourceException => true,
        _ => false,
    };

    /// <summary>What went wrong, with the API server's own message when it gave one.</summary>
    internal static string Describe(Exception e) => e switch
    {
        NodePatchException p => p.Message,
        HttpOperationException h => $"{(int)h.Response.StatusCode} {h.Response.StatusCode}: {ServerMessage(h.Response.Content)}",
        HttpRequestException { InnerException: { } inner } r => $"{r.Message} ({inner.Message})",
        OperationCanceledException => $"no answer within {KubeCredentials.RequestTimeout.TotalSeconds:F0} s",
        _ => e.Message,
    };

    private static string ServerMessage(string? content)
    {
        if (string.IsNullOrWhiteSpace(content)) return "(no message)";
        try
        {
            using var status = JsonDocument.Parse(content);
            if (status.RootElement.ValueKind == JsonValueKind.Object && status.RootElement.TryGetProperty("message", out var message))
                return message.GetString() ?? content;
        }
        catch (JsonException)
        {
        }
        return content.Length > 500 ? content[..500] : content;
    }
}

/// <summary>The PATCH of a Node's status failed; the message names the node and the server and says what to do where it can.</summary>
public sealed class NodePatchException(string node, Uri server, Exception inner)
    : Exception(Explain(node, server, inner), inner)
{
    private static string Explain(string node, Uri server, Exception inner)
    {
        string what = $"cannot patch the status of node \"{node}\" on {server}: {NodeConditionReporter.Describe(inner)}";
        return inner is HttpOperationException h ? h.Response.StatusCode switch
        {
            HttpStatusCode.Forbidden => what + " (the identity needs `patch` on `nodes/status`: see the ClusterRole in deploy/kubernetes/hull.yaml, or use the kubelet's kubeconfig)",
            HttpStatusCode.Unauthorized => what + " (the credentials were refused)",
            HttpStatusCode.NotFound => what + " (the Node is not registered yet, or node_name is wrong)",
            _ => what,
        } : what;
    }
}

/// <summary>The warnings could not be read (e.g. hulld's socket does not answer, for <c>hulld node-conditions</c>); retried.</summary>
public sealed class DeprecationSourceException(string message, Exception? inner = null) : Exception(message, inner);
