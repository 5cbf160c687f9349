using static Hull.Config.ConfigDiagnosticKind;

namespace Hull.Config.Tests.Config;

/// <summary>Type errors, invalid values, unreadable and unparsable files.</summary>
public class ValueErrorTests
{
    private static ConfigLoadResult Load(string toml) => ConfigLoader.LoadText(toml, "config.toml");

    [Theory]
    [InlineData("[grpc]\nuid = \"0\"", "grpc.uid", "an integer", "a string (\"0\")")]
    [InlineData("strict = \"yes\"", "strict", "a boolean (true or false)", "a string (\"yes\")")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime']\nenable_cdi = 1", "plugins.\"io.containerd.cri.v1.runtime\".enable_cdi", "a boolean", "an integer (1)")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.cni]\nbin_dirs = \"/opt/cni/bin\"", "plugins.\"io.containerd.cri.v1.runtime\".cni.bin_dirs", "a list of strings", "a string")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.cni]\nbin_dirs = [\"/opt/cni/bin\", 1]", "plugins.\"io.containerd.cri.v1.runtime\".cni.bin_dirs", "a list of strings", "the list holds an integer (1)")]
    [InlineData("[plugins.'io.containerd.cri.v1.images']\nimage_pull_progress_timeout = 300", "plugins.\"io.containerd.cri.v1.images\".image_pull_progress_timeout", "a duration string", "an integer (300)")]
    [InlineData("[plugins.'io.containerd.cri.v1.images']\nimage_pull_progress_timeout = \"5 minutes\"", "plugins.\"io.containerd.cri.v1.images\".image_pull_progress_timeout", "a duration string", "\"5 minutes\" is not a duration")]
    [InlineData("[plugins.'io.containerd.grpc.v1.cri']\nstream_idle_timeout = \"-1h\"", "plugins.\"io.containerd.grpc.v1.cri\".stream_idle_timeout", "a duration string", "is negative")]
    [InlineData("[plugins.'io.containerd.grpc.v1.cri']\nstream_server_port = 10010", "plugins.\"io.containerd.grpc.v1.cri\".stream_server_port", "a string", "an integer (10010)")]
    [InlineData("[plugins.'io.containerd.cri.v1.images']\npinned_images = { sandbox = 3 }", "plugins.\"io.containerd.cri.v1.images\".pinned_images", "a table of strings", "`sandbox` is an integer (3)")]
    [InlineData("[grpc]\nmax_recv_message_size = 99999999999", "grpc.max_recv_message_size", "an integer", "out of range")]
    [InlineData("oom_score = \"high\"", "oom_score", "an integer", "a string")]
    [InlineData("grpc = \"/run/hull.sock\"", "grpc", "a table", "a string")]
    [InlineData("[plugins]\n'io.containerd.nri.v1.nri' = true", "plugins.\"io.containerd.nri.v1.nri\"", "a table", "a boolean (true)")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]\nrunc = \"io.containerd.runc.v2\"", "plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc", "a table", "a string")]
    [InlineData("[plugins.'io.containerd.transfer.v1.local']\nunpack_config = { platform = \"linux/amd64\" }", "plugins.\"io.containerd.transfer.v1.local\".unpack_config", "an array of tables", "a table")]
    public void Type_errors_are_always_errors_with_path_position_and_expected_type(string body, string path, string expected, string got)
    {
        var result = Load("version = 3\n" + body);

        var d = Assert.Single(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal(TypeMismatch, d.Kind);
        Assert.Equal(path, d.KeyPath);
        Assert.True(d.Line >= 2, d.ToString());
        Assert.StartsWith($"config.toml:{d.Line}:{d.Column}: `{path}` must be {expected}", d.ToString());
        Assert.Contains(got, d.Message);
        Assert.True(result.HasErrors);
    }

    [Theory]
    [InlineData("[debug]\nlevel = \"verbose\"", "must be one of \"trace\", \"debug\"")]
    [InlineData("[grpc]\nuid = -1", "must not be negative")]
    [InlineData("[grpc]\nmax_send_message_size = 0", "must be positive")]
    [InlineData("[plugins.'io.containerd.grpc.v1.cri']\nstream_server_port = \"http\"", "must be a port number")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.cni]\nip_pref = \"ipv5\"", "must be one of \"ipv4\", \"ipv6\", \"cni\"")]
    [InlineData("[plugins.'io.containerd.cri.v1.images']\nsnapshotter = \"zfs\"", "snapshotter \"zfs\" is not available in Hull")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd]\ndefault_runtime_name = \"crun\"", "no runtime \"crun\" is configured in `containerd.runtimes`")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd]\ndefault_runtime_name = \"\"", "must not be empty")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\nprivileged_without_host_devices_all_devices_allowed = true", "requires `privileged_without_host_devices`")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.cni]\nbin_dir = \"/a\"\nbin_dirs = [\"/b\"]", "cannot be set at the same time")]
    [InlineData("[plugins.'io.containerd.grpc.v1.cri'.x509_key_pair_streaming]\ntls_cert_file = \"/etc/cert.pem\"", "needs both `tls_cert_file` and `tls_key_file`")]
    public void Invalid_values_are_errors(string body, string message)
    {
        var result = Load("version = 3\n" + body);

        var d = Assert.Single(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal(InvalidValue, d.Kind);
        Assert.Contains(message, d.Message);
        Assert.True(d.Line >= 2, d.ToString());
    }

    [Fact]
    public void A_new_runtime_handler_starts_from_the_defaults_and_the_default_one_keeps_its_settings()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.containerd]
            default_runtime_name = "crun"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
            BinaryName = "crun"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            SystemdCgroup = true
            """);

        Assert.Empty(result.Diagnostics);
        var crun = result.Config.Runtime.Runtimes["crun"];
        Assert.Equal(("io.containerd.runc.v2", "podsandbox", "crun", false), (crun.RuntimeType, crun.Sandboxer, crun.BinaryName, crun.SystemdCgroup));
        var runc = result.Config.Runtime.Runtimes["runc"];
        Assert.Equal(("io.containerd.runc.v2", "podsandbox", true), (runc.RuntimeType, runc.Sandboxer, runc.SystemdCgroup));
    }

    [Fact]
    public void Cni_bin_dir_is_read_as_bin_dirs_and_deprecated()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.cni]
            bin_dir = "/usr/lib/cni"
            """);

        Assert.Equal(["/usr/lib/cni"], result.Config.Runtime.Cni.BinDirs);
        Assert.Equal([ConfigDeprecations.CriCniBinDir], result.DeprecationIds);
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal((Deprecated, 3), (d.Kind, d.Line));
        Assert.Contains("use `bin_dirs` instead", d.Message);
    }

    [Fact]
    public void Toml_syntax_error_is_a_config_exception_with_file_line_and_column()
    {
        using var file = TestFiles.Write("version = 3\n[grpc]\naddress = \"/run/hull.sock\n");

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(file.Path));

        Assert.StartsWith($"{file.Path}:3:", e.Message);
        Assert.IsType<Tomlyn.TomlException>(e.InnerException);
    }

    [Fact]
    public void Missing_file_is_a_config_exception_saying_so() =>
        Assert.Equal("/nonexistent/hull.toml: cannot read config file: no such file",
            Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile("/nonexistent/hull.toml")).Message);

    [Fact]
    public void Directory_is_a_config_exception_saying_so()
    {
        string dir = Path.GetTempPath();
        Assert.Equal($"{dir}: cannot read config file: it is a directory", Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(dir)).Message);
    }

    [Fact]
    public void Unreadable_file_is_a_config_exception_saying_so()
    {
        using var file = TestFiles.Write("version = 3\n");
        File.SetUnixFileMode(file.Path, UnixFileMode.None);
        if (Environment.UserName == "root")
        {
            // root reads anything; the mode cannot make the file unreadable.
            Assert.False(ConfigLoader.LoadFile(file.Path).HasErrors);
            return;
        }

        Assert.Equal($"{file.Path}: cannot read config file: permission denied", Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(file.Path)).Message);
    }

    [Fact]
    public void Invalid_utf8_is_a_config_exception_with_position()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hull-config-{Guid.NewGuid():N}.toml");
        File.WriteAllBytes(path, [.. "version = 3\nroot = \""u8, 0xFF, .. "\"\n"u8]);
        try
        {
            var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(path));
            Assert.StartsWith($"{path}:2:", e.Message);
            Assert.Contains("UTF-8", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("version = 4", "config version 4 is not supported")]
    [InlineData("version = -1", "config version -1 is not supported")]
    [InlineData("version = \"3\"", "`version` must be an integer")]
    public void Unusable_versions_are_errors_and_nothing_else_is_reported(string toml, string message)
    {
        var result = Load(toml + "\nunknown_key = 1\n");

        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains(message, d.Message);
        Assert.Equal((1, 1), (d.Line, d.Column));
        Assert.True(result.HasErrors);
    }

    [Fact]
    public void Empty_file_is_version_1_with_the_defaults()
    {
        var result = Load("");

        Assert.Equal(1, result.SourceVersion);
        Assert.Equal([ConfigDeprecations.ConfigVersion1], result.DeprecationIds);
        Assert.Equal(ConfigMigrationNotice, Assert.Single(result.Diagnostics).Kind);
        Assert.Equal(Schema.ConfigWriter.Write(new HullConfig()), Schema.ConfigWriter.Write(result.Config));
    }
}
