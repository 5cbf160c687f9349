namespace Hull.Cdi.Tests;

public sealed class RegistryTests : TwoSpecDirectories
{
    private CdiRegistry Registry(bool watch = false) => new(new CdiRegistryOptions { SpecDirectories = [_etc, _run], Watch = watch });

    private static IEnumerable<string> Names(CdiSnapshot s) => s.Devices.Select(d => d.Name);

    [Fact]
    public void Json_and_yaml_files_are_loaded_and_other_files_ignored()
    {
        _tmp.Write(_etc, "a.yaml", Specs.Yaml("vendor.com/gpu", "0", "1"));
        _tmp.Write(_etc, "b.json", """{"cdiVersion":"0.3.0","kind":"vendor.com/nic","devices":[{"name":"eth1","containerEdits":{"env":["NIC=1"]}}]}""");
        _tmp.Write(_etc, "c.yml", Specs.Yaml("vendor.com/yml", "x"));
        _tmp.Write(_etc, "d.yaml.bak", Specs.Yaml("vendor.com/bak", "x"));
        _tmp.Write(Path.Combine(_etc, "sub"), "e.yaml", Specs.Yaml("vendor.com/sub", "x"));
        using var registry = Registry();

        Assert.Equal(["vendor.com/gpu=0", "vendor.com/gpu=1", "vendor.com/nic=eth1"], Names(registry.Current));
        Assert.Equal(Path.Combine(_etc, "b.json"), registry.Current.Devices.Single(d => d.Name == "vendor.com/nic=eth1").SpecFile);
        Assert.Empty(registry.Current.Errors);
    }

    [Fact]
    public void Missing_directories_are_no_error()
    {
        using var registry = Registry();
        Assert.Empty(registry.Current.Devices);
        Assert.Empty(registry.Current.Errors);
    }

    [Fact]
    public void An_invalid_spec_is_reported_and_does_not_take_its_neighbours_down()
    {
        _tmp.Write(_etc, "good.yaml", Specs.Yaml("vendor.com/gpu", "0"));
        string bad = _tmp.Write(_etc, "bad.yaml", Specs.Yaml("0.3.0", "vendor.com/fpga", ["0"]));
        string broken = _tmp.Write(_run, "broken.json", "{ not json");
        using var registry = Registry();

        Assert.Equal(["vendor.com/gpu=0"], Names(registry.Current));
        Assert.Equal([bad, broken], registry.Current.Errors.Select(e => e.File));
        Assert.Contains("a device name starting with a digit (devices[0].name)", registry.Current.Errors[0].Reason);
    }

    [Fact]
    public void A_device_in_a_later_directory_replaces_the_earlier_one()
    {
        _tmp.Write(_etc, "gpu.yaml", Specs.Yaml("vendor.com/gpu", "0", "1"));
        string later = _tmp.Write(_run, "gpu.yaml", "cdiVersion: 0.5.0\nkind: vendor.com/gpu\ndevices:\n  - name: \"1\"\n    containerEdits: {env: [FROM=run]}\n");
        using var registry = Registry();

        Assert.Equal(later, registry.Current.Devices.Single(d => d.Name == "vendor.com/gpu=1").SpecFile);
        Assert.Equal(["FROM=run"], registry.Resolve(["vendor.com/gpu=1"]).Env);
        Assert.Empty(registry.Current.Errors);
    }

    [Fact]
    public void A_device_defined_in_two_files_of_one_directory_is_a_conflict_and_not_used()
    {
        string a = _tmp.Write(_etc, "a.yaml", Specs.Yaml("vendor.com/gpu", "0", "1"));
        string b = _tmp.Write(_etc, "b.yaml", Specs.Yaml("vendor.com/gpu", "1", "2"));
        using var registry = Registry();

        Assert.Equal(["vendor.com/gpu=0", "vendor.com/gpu=2"], Names(registry.Current));
        Assert.Equal([(a, "devices[1].name"), (b, "devices[0].name")], registry.Current.Errors.Select(e => (e.File, e.Field)).Order());
        Assert.Contains($"conflicting device \"vendor.com/gpu=1\": also defined in \"{b}\"", registry.Current.Errors.Single(e => e.File == a).Reason);
        var e = Assert.Throws<CdiException>(() => registry.Resolve(["vendor.com/gpu=1"]));
        Assert.Equal(CdiErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains(a, e.Message);
        Assert.Contains(b, e.Message);

        // A later directory's definition settles it.
        string run = _tmp.Write(_run, "c.yaml", Specs.Yaml("vendor.com/gpu", "1"));
        Assert.Equal(run, registry.Refresh().Devices.Single(d => d.Name == "vendor.com/gpu=1").SpecFile);
        Assert.Empty(registry.Current.Errors);
    }

    [Fact]
    public void Refresh_picks_up_changes_and_counts_generations()
    {
        using var registry = Registry();
        long first = registry.Current.Generation;
        _tmp.Write(_run, "gpu.yaml", Specs.Yaml("vendor.com/gpu", "0"));
        Assert.Empty(registry.Current.Devices); // not watching: only an explicit refresh reads
        var snapshot = registry.Refresh();
        Assert.True(snapshot.Generation > first);
        Assert.Equal(["vendor.com/gpu=0"], Names(snapshot));
    }

    // Waits until the registry's snapshot satisfies the condition (checked on every refresh), at most 10 s.
    private static async Task<CdiSnapshot> WaitFor(CdiRegistry registry, Func<CdiSnapshot, bool> condition)
    {
        var done = new TaskCompletionSource<CdiSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(CdiSnapshot s)
        {
            if (condition(s)) done.TrySetResult(s);
        }
        registry.Refreshed += Check;
        try
        {
            Check(registry.Current);
            return await done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"the registry did not refresh to the expected state; it has {string.Join(", ", Names(registry.Current))}; errors: {string.Join("; ", registry.Current.Errors)}");
        }
        finally
        {
            registry.Refreshed -= Check;
        }
    }

    [Fact]
    public async Task Watching_refreshes_on_new_changed_removed_and_renamed_files()
    {
        Directory.CreateDirectory(_etc);
        using var registry = Registry(watch: true);

        string path = _tmp.Write(_etc, "gpu.yaml", Specs.Yaml("vendor.com/gpu", "0"));
        await WaitFor(registry, s => Names(s).SequenceEqual(["vendor.com/gpu=0"]));

        File.WriteAllText(path, Specs.Yaml("vendor.com/gpu", "0", "1"));
        await WaitFor(registry, s => Names(s).SequenceEqual(["vendor.com/gpu=0", "vendor.com/gpu=1"]));

        _tmp.WriteAtomically(_etc, "nic.yaml", Specs.Yaml("vendor.com/nic", "eth1"));
        await WaitFor(registry, s => Names(s).Contains("vendor.com/nic=eth1"));

        File.Move(path, Path.Combine(_etc, "gpu.yaml.disabled"));
        await WaitFor(registry, s => Names(s).SequenceEqual(["vendor.com/nic=eth1"]));

        File.WriteAllText(Path.Combine(_etc, "nic.yaml"), "cdiVersion: [");
        var broken = await WaitFor(registry, s => !s.Devices.Any());
        Assert.Contains(broken.Errors, e => e.File.EndsWith("nic.yaml", StringComparison.Ordinal));

        File.Delete(Path.Combine(_etc, "nic.yaml"));
        await WaitFor(registry, s => s.Errors.Count == 0);
    }

    [Fact]
    public async Task Watching_picks_up_a_spec_directory_created_after_start_and_one_removed_and_created_again()
    {
        // The second directory and its parent do not exist yet (as /var/run/cdi before a driver runs).
        string run = Path.Combine(_tmp.Dir("var"), "run", "cdi");
        using var registry = new CdiRegistry(new CdiRegistryOptions { SpecDirectories = [_etc, run], Watch = true });

        _tmp.Write(run, "gpu.yaml", Specs.Yaml("vendor.com/gpu", "0"));
        await WaitFor(registry, s => Names(s).SequenceEqual(["vendor.com/gpu=0"]));

        Directory.Delete(run, recursive: true);
        await WaitFor(registry, s => !s.Devices.Any());

        _tmp.Write(run, "gpu.yaml", Specs.Yaml("vendor.com/gpu", "1"));
        await WaitFor(registry, s => Names(s).SequenceEqual(["vendor.com/gpu=1"]));

        // And files written into the recreated directory later still count.
        _tmp.Write(run, "nic.yaml", Specs.Yaml("vendor.com/nic", "eth1"));
        await WaitFor(registry, s => Names(s).Contains("vendor.com/nic=eth1"));
    }
}
