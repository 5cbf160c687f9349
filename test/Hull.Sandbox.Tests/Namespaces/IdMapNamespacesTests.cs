using System.Globalization;
using Hull.Linux.Namespaces;
using Hull.Linux.Processes;
using Hull.Sandbox.Namespaces;
using Microsoft.Win32.SafeHandles;

namespace Hull.Sandbox.Tests.Namespaces;

/// <summary>Where a container's idmapped mounts get their user namespace: the pod's pin, else a holder process.</summary>
public sealed class IdMapNamespacesTests : IDisposable
{
    private static readonly IdMapping Pod = new(0, 3_500_000, 65536), Other = new(0, 3_600_000, 65536);
    private readonly TempDirectory _state = new();
    private readonly NamespacePinner _pinner;

    public IdMapNamespacesTests() => _pinner = new NamespacePinner(_state.Path);

    public void Dispose()
    {
        try
        {
            foreach (var id in _pinner.ListSandboxIds()) _pinner.Remove(id);
        }
        finally
        {
            _state.Dispose();
        }
    }

    /// <summary>"user:[inode]": which namespace a descriptor refers to.</summary>
    private static string NamespaceOf(SafeFileHandle handle) => new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget!;

    /// <summary>
    /// The live user-namespace holders of this process with <paramref name="mapping"/> (the tests' own host ids, so that
    /// holders other test classes start meanwhile do not count).
    /// </summary>
    private static List<int> Holders(IdMapping mapping) => Directory.EnumerateDirectories("/proc")
        .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? ProcessInfo.TryRead(pid) : null)
        .Where(p => p is not null && p.Command == NamespaceHolder.ProcessName && p.ParentPid == Environment.ProcessId && !p.IsZombie)
        .Select(p => p!.Pid).Where(pid => UidMapOf(pid) == $"{mapping.ContainerId} {mapping.HostId} {mapping.Size}").ToList();

    private static string UidMapOf(int pid)
    {
        try
        {
            return string.Join(' ', File.ReadAllText($"/proc/{pid}/uid_map").Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        }
        catch (IOException)
        {
            return ""; // gone meanwhile
        }
    }

    [RootFact]
    public async Task The_pods_mapping_is_taken_from_its_pin_without_a_process_and_another_mapping_gets_one_holder()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("idmap") { UserNamespace = new UserNamespaceMappings([Pod], [Pod]) });
        using var pin = LinuxNamespaces.Open(pinned.UserPath!);
        using (var idMaps = new IdMapNamespaces(new PinnedUserNamespace(pinned.UserPath!, Pod, Pod)))
        {
            using (var same = idMaps.Open(Pod, Pod)) Assert.Equal(NamespaceOf(pin), NamespaceOf(same));
            Assert.Empty(Holders(Pod));

            using var other = idMaps.Open(Other, Other);
            using var again = idMaps.Open(Other, Other);
            Assert.NotEqual(NamespaceOf(pin), NamespaceOf(other));
            Assert.Equal(NamespaceOf(other), NamespaceOf(again)); // one holder per mapping, shared by the batch
            Assert.Single(Holders(Other));
        }
        Assert.Empty(Holders(Other));
    }

    [RootFact]
    public void A_pin_that_is_gone_falls_back_to_a_holder_with_the_same_mapping()
    {
        using var idMaps = new IdMapNamespaces(new PinnedUserNamespace(_state.Sub("ns/user/gone"), Pod, Pod));
        using var userns = idMaps.Open(Pod, Pod);
        Assert.StartsWith("user:[", NamespaceOf(userns));
        Assert.Single(Holders(Pod));
    }
}
