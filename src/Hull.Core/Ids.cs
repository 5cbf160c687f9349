using System.Security.Cryptography;

namespace Hull.Core;

/// <summary>Hull's one id generator: random lowercase hex, as containerd makes its ids.</summary>
public static class Ids
{
    /// <summary>A pod sandbox or container id: 64 hex digits (256 random bits).</summary>
    public static string New() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>A short id for something that lives inside an object already named by a full id (an exec session).</summary>
    public static string NewShort() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
}
