using Hull.Config;

namespace Hull.Config.Tests.Config;

public class KeySuggesterTests
{
    [Theory]
    [InlineData("bin_dirz", "bin_dirs")]
    [InlineData("bni_dirs", "bin_dirs")] // transposition
    [InlineData("conf_dirs", "conf_dir")]
    [InlineData("systemdcgroup", "SystemdCgroup")] // case only
    [InlineData("SystemdCgroups", "SystemdCgroup")]
    [InlineData("sandbox_imag", "sandbox_image")]
    [InlineData("default_runtime_nam", "default_runtime_name")]
    public void Suggests_the_closest_key(string key, string expected) =>
        Assert.Equal(expected, KeySuggester.Closest(key, ["bin_dirs", "conf_dir", "max_conf_num", "SystemdCgroup", "sandbox_image", "default_runtime_name"]));

    [Theory]
    [InlineData("xyz")]
    [InlineData("completely_different")]
    public void Suggests_nothing_for_keys_that_are_not_typos(string key) =>
        Assert.Null(KeySuggester.Closest(key, ["bin_dirs", "conf_dir", "max_conf_num"]));

    [Theory]
    [InlineData("abc", "abc", 0)]
    [InlineData("abc", "acb", 1)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("", "abc", 3)]
    public void Distance_is_optimal_string_alignment(string a, string b, int expected) => Assert.Equal(expected, KeySuggester.Distance(a, b));
}
