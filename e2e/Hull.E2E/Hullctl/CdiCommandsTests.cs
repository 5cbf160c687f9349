using Hull.E2E.Fixtures;

namespace Hull.E2E.Hullctl;

/// <summary>`hullctl cdi …` on a real spec directory with a real (mknod'ed) device node; hulld is not needed.</summary>
public sealed class CdiCommandsTests
{
    private static async Task<ProcessResult> Hullctl(params string[] args) =>
        await ProcessRunner.DotnetAsync(Repo.HullctlDll, args, TimeSpan.FromMinutes(1));

    [E2EFact]
    public async Task Ls_and_check_show_the_device_its_spec_and_what_it_adds_to_a_container()
    {
        using var cdi = CdiFixture.Create();

        var ls = await Hullctl("cdi", "ls", "--spec-dir", cdi.SpecDirectory);
        Assert.True(ls.ExitCode == 0, ls.ToString());
        Assert.Contains($"{CdiFixture.QualifiedName}   {cdi.SpecPath}\n", ls.Stdout);

        var check = await Hullctl("cdi", "check", cdi.SpecPath);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains($"{cdi.SpecPath}: valid CDI spec (cdiVersion 0.5.0, needs at least 0.5.0; kind {CdiFixture.Kind}; 1 device)", check.Stdout);
        Assert.Contains($"  env        {CdiFixture.EnvName}={CdiFixture.EnvValue}\n", check.Stdout);
        Assert.Contains($"  device     {CdiFixture.ContainerDevicePath} (c {cdi.Major}:{cdi.Minor}, from {cdi.HostDevicePath}, mode 666, cgroup rwm)\n", check.Stdout);
        Assert.Contains($"  mount      {CdiFixture.MountContainerPath} from {cdi.MountHostDirectory} [ro,nosuid,nodev,rbind]\n", check.Stdout);
    }

    [E2EFact]
    public async Task An_invalid_spec_is_reported_with_file_field_and_reason_and_its_neighbour_still_listed()
    {
        using var cdi = CdiFixture.Create();
        string bad = Path.Combine(cdi.SpecDirectory, "bad.yaml");
        await File.WriteAllTextAsync(bad, "cdiVersion: 0.3.0\nkind: hull.test/bad\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{path: /dev/x, hostPath: /dev/null}]\n");
        string expected = $"CDI spec \"{bad}\": cdiVersion: version \"0.3.0\" is too old for deviceNodes[].hostPath (devices[0].containerEdits.deviceNodes[0].hostPath): the spec version must be at least v0.5.0";

        var check = await Hullctl("cdi", "check", "--spec-dir", cdi.SpecDirectory);
        Assert.Equal(1, check.ExitCode);
        Assert.Contains($"error: {expected}\n", check.Stderr);
        Assert.Contains("1 valid spec, 1 device, 1 problem", check.Stdout);

        var ls = await Hullctl("cdi", "ls", "--spec-dir", cdi.SpecDirectory);
        Assert.Equal(0, ls.ExitCode);
        Assert.Contains(CdiFixture.QualifiedName, ls.Stdout);
        Assert.Contains($"warning: {expected}\n", ls.Stderr);

        // A device nobody defines cannot be checked, and a missing host node is reported for the device that needs it.
        File.Delete(cdi.HostDevicePath);
        var missing = await Hullctl("cdi", "check", cdi.SpecPath);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains($"error: CDI device \"{CdiFixture.QualifiedName}\": host device \"{cdi.HostDevicePath}\" (for \"{CdiFixture.ContainerDevicePath}\") does not exist", missing.Stderr);
    }
}
