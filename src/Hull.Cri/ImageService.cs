namespace Hull.Cri;

/// <summary>
/// CRI ImageService. Every RPC answers UNIMPLEMENTED naming the method until the Images issue
/// (transfer service, content store, snapshots) lands.
/// </summary>
public sealed class ImageService;
