using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Security;

/// <summary>What the host's AppArmor offers: whether the LSM is on and which profiles are loaded.</summary>
public sealed record AppArmorHost(bool Enabled, IReadOnlySet<string> LoadedProfiles)
{
    public static AppArmorHost Disabled { get; } = new(false, new HashSet<string>());

    public bool IsLoaded(string profile) => LoadedProfiles.Contains(profile);

    /// <summary>Enabled when /sys/module/apparmor/parameters/enabled says Y; profiles from /sys/kernel/security/apparmor/profiles.</summary>
    public static AppArmorHost Detect(
        string enabledPath = "/sys/module/apparmor/parameters/enabled",
        string profilesPath = "/sys/kernel/security/apparmor/profiles")
    {
        try
        {
            if (!File.Exists(enabledPath) || !File.ReadAllText(enabledPath).StartsWith('Y')) return Disabled;
            var loaded = new HashSet<string>(StringComparer.Ordinal);
            if (File.Exists(profilesPath))
                foreach (var line in File.ReadLines(profilesPath))
                {
                    // "name (enforce)"
                    int paren = line.LastIndexOf(" (", StringComparison.Ordinal);
                    loaded.Add(paren > 0 ? line[..paren] : line.Trim());
                }
            return new AppArmorHost(true, loaded);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Disabled;
        }
    }
}

/// <summary>
/// Picks process.apparmorProfile. Hull's decisions, documented because containerd and CRI-O differ here:
/// <list type="bullet">
/// <item>AppArmor off on the host: RuntimeDefault and Unconfined mean nothing; a Localhost profile is a
/// FailedPrecondition error ("AppArmor is not enabled on this host"), since silently running unconfined would hide it.</item>
/// <item>RuntimeDefault (also when the container says nothing) uses the profile <see cref="DefaultProfileName"/>. Hull does
/// not run apparmor_parser on its own while building a spec: the profile (<see cref="AppArmorDefaultProfile.Render"/>)
/// is loaded by the installer or at daemon start. If it is not loaded, creating the container fails with
/// FailedPrecondition rather than running it unconfined. Privileged containers get no profile.</item>
/// <item>Localhost uses the named profile, which must be loaded (FailedPrecondition otherwise), privileged or not.</item>
/// </list>
/// </summary>
public static class AppArmorProfiles
{
    public const string DefaultProfileName = "hull-default";

    public static string? Resolve(SecurityProfile? profile, bool privileged, AppArmorHost host, string defaultProfileName = DefaultProfileName)
    {
        if (profile is not null && profile.Kind != SecurityProfileKind.Localhost && !string.IsNullOrEmpty(profile.LocalhostRef))
            throw new HullException(ErrorKind.InvalidArgument, $"AppArmor profile {profile.Kind} must not name a localhost profile (\"{profile.LocalhostRef}\")");
        var kind = profile?.Kind ?? SecurityProfileKind.RuntimeDefault;
        string? name = kind == SecurityProfileKind.Localhost ? TrimPrefix(profile!.LocalhostRef) : null;
        if (kind == SecurityProfileKind.Localhost && string.IsNullOrEmpty(name))
            throw new HullException(ErrorKind.InvalidArgument, "AppArmor profile type Localhost needs a profile name");

        if (!host.Enabled)
        {
            if (kind == SecurityProfileKind.Localhost)
                throw new HullException(ErrorKind.FailedPrecondition, $"AppArmor is not enabled on this host: cannot apply AppArmor profile \"{name}\"");
            return null;
        }
        switch (kind)
        {
            case SecurityProfileKind.Unconfined:
                return null;
            case SecurityProfileKind.RuntimeDefault:
                if (privileged) return null;
                if (!host.IsLoaded(defaultProfileName))
                    throw new HullException(ErrorKind.FailedPrecondition,
                        $"the runtime default AppArmor profile \"{defaultProfileName}\" is not loaded on this host; load it (apparmor_parser) or run the container with an Unconfined AppArmor profile");
                return defaultProfileName;
            default:
                if (!host.IsLoaded(name!))
                    throw new HullException(ErrorKind.FailedPrecondition, $"AppArmor profile \"{name}\" is not loaded on this host");
                return name;
        }
    }

    private static string? TrimPrefix(string? reference) =>
        reference is not null && reference.StartsWith(SeccompProfiles.LocalhostPrefix, StringComparison.Ordinal)
            ? reference[SeccompProfiles.LocalhostPrefix.Length..]
            : reference;
}

/// <summary>The text of Hull's default AppArmor profile, after containerd's contrib/apparmor template.</summary>
public static class AppArmorDefaultProfile
{
    /// <param name="name">The profile name (<see cref="AppArmorProfiles.DefaultProfileName"/>).</param>
    /// <param name="withAbstractions">Include tunables/global and abstractions/base (when /etc/apparmor.d has them).</param>
    public static string Render(string name = AppArmorProfiles.DefaultProfileName, bool withAbstractions = true)
    {
        string includeTunables = withAbstractions ? "#include <tunables/global>\n" : "@{PROC}=/proc/\n";
        string includeBase = withAbstractions ? "  #include <abstractions/base>\n\n" : "";
        return $$"""
            {{includeTunables}}
            profile {{name}} flags=(attach_disconnected,mediate_deleted) {
            {{includeBase}}  network,
              capability,
              file,
              umount,
              # Host (privileged) processes, runc and crun may send signals to container processes.
              signal (receive) peer=unconfined,
              signal (receive) peer=runc,
              signal (receive) peer=crun,
              # Container processes may send signals amongst themselves.
              signal (send,receive) peer={{name}},

              deny @{PROC}/* w,   # deny write for all files directly in /proc (not in a subdir)
              # deny write to files not in /proc/<number>/** or /proc/sys/**
              deny @{PROC}/{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],[^1-9/][^0-9/][^0-9/][^0-9/]*}/** w,
              deny @{PROC}/sys/[^k]** w,  # deny /proc/sys except /proc/sys/k* (effectively /proc/sys/kernel)
              deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,  # deny everything except shm* in /proc/sys/kernel/
              deny @{PROC}/sysrq-trigger rwklx,
              deny @{PROC}/kcore rwklx,

              deny mount,

              deny /sys/[^f]*/** wklx,
              deny /sys/f[^s]*/** wklx,
              deny /sys/fs/[^c]*/** wklx,
              deny /sys/fs/c[^g]*/** wklx,
              deny /sys/fs/cg[^r]*/** wklx,
              deny /sys/firmware/** rwklx,
              deny /sys/devices/virtual/powercap/** rwklx,
              deny /sys/kernel/security/** rwklx,

              # allow processes within the container to trace each other,
              # provided all other LSM and yama setting allow it.
              ptrace (trace,tracedby,read,readby) peer={{name}},
            }

            """;
    }
}
