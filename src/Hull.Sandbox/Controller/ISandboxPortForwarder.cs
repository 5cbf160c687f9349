namespace Hull.Sandbox.Controller;

/// <summary>
/// A sandboxer whose pods do not listen in a network namespace on this host (a microVM's services listen in the
/// guest) opens port-forward connections itself; for the others the streaming server dials 127.0.0.1 in the pod's
/// network namespace.
/// </summary>
public interface ISandboxPortForwarder
{
    /// <summary>A connection to 127.0.0.1:<paramref name="port"/> inside the pod.</summary>
    Task<Stream> DialAsync(string sandboxId, int port, CancellationToken cancellationToken);
}
