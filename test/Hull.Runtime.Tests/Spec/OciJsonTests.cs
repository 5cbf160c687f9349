using System.Text.Json.Nodes;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class OciJsonTests
{
    [Fact]
    public void Process_and_root_use_the_runtime_spec_field_names()
    {
        var spec = new OciSpec
        {
            Process = new OciProcess
            {
                Terminal = true,
                User = new OciUser { Uid = 1000, Gid = 1000, AdditionalGids = [10] },
                Args = ["/bin/sh"],
                Env = ["PATH=/bin"],
                Cwd = "/",
                Capabilities = new OciCapabilities { Bounding = ["CAP_KILL"], Effective = ["CAP_KILL"], Permitted = ["CAP_KILL"] },
                NoNewPrivileges = true,
                ApparmorProfile = "hull-default",
                OomScoreAdj = -998,
            },
            Root = new OciRoot { Path = "/rootfs", Readonly = true },
        };
        Assert.Equal(
            """{"ociVersion":"1.0.2","process":{"terminal":true,"user":{"uid":1000,"gid":1000,"additionalGids":[10]},"args":["/bin/sh"],"env":["PATH=/bin"],"cwd":"/","capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]},"noNewPrivileges":true,"apparmorProfile":"hull-default","oomScoreAdj":-998},"root":{"path":"/rootfs","readonly":true}}""",
            OciJson.Serialize(spec));
    }

    [Fact]
    public void Mounts_and_linux_use_the_runtime_spec_field_names()
    {
        var spec = new OciSpec
        {
            Mounts = [new OciMount { Destination = "/data", Type = "bind", Source = "/srv", Options = ["rbind", "rprivate", "ro"] }],
            Linux = new OciLinux
            {
                UidMappings = [new OciIdMapping(0, 100000, 65536)],
                Sysctl = new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" },
                Resources = new OciResources
                {
                    Devices = [new OciDeviceCgroup { Allow = false, Access = "rwm" }],
                    Memory = new OciMemory { Limit = 1024, Swap = 1024 },
                    Cpu = new OciCpu { Shares = 2, Quota = 5000, Period = 10000, Cpus = "0" },
                    HugepageLimits = [new OciHugepageLimit("2MB", 4096)],
                    Unified = new Dictionary<string, string> { ["cpu.weight"] = "1" },
                },
                CgroupsPath = "/hull/p/c",
                Namespaces = [new OciNamespace { Type = "network", Path = "/run/netns/x" }, new OciNamespace { Type = "mount" }],
                Devices = [new OciDevice { Type = "c", Path = "/dev/null", Major = 1, Minor = 3, FileMode = 438, Uid = 0, Gid = 0 }],
                RootfsPropagation = "rslave",
                MaskedPaths = ["/proc/kcore"],
                ReadonlyPaths = ["/proc/sys"],
            },
        };
        var json = JsonNode.Parse(OciJson.Serialize(spec))!;
        Assert.Equal("""[{"destination":"/data","type":"bind","source":"/srv","options":["rbind","rprivate","ro"]}]""", json["mounts"]!.ToJsonString());
        var linux = json["linux"]!;
        Assert.Equal("""[{"containerID":0,"hostID":100000,"size":65536}]""", linux["uidMappings"]!.ToJsonString());
        Assert.Equal("""{"net.ipv4.ip_forward":"1"}""", linux["sysctl"]!.ToJsonString());
        Assert.Equal("""{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":1024,"swap":1024},"cpu":{"shares":2,"quota":5000,"period":10000,"cpus":"0"},"hugepageLimits":[{"pageSize":"2MB","limit":4096}],"unified":{"cpu.weight":"1"}}""",
            linux["resources"]!.ToJsonString());
        Assert.Equal("/hull/p/c", (string)linux["cgroupsPath"]!);
        Assert.Equal("""[{"type":"network","path":"/run/netns/x"},{"type":"mount"}]""", linux["namespaces"]!.ToJsonString());
        Assert.Equal("""[{"type":"c","path":"/dev/null","major":1,"minor":3,"fileMode":438,"uid":0,"gid":0}]""", linux["devices"]!.ToJsonString());
        Assert.Equal("rslave", (string)linux["rootfsPropagation"]!);
        Assert.Equal("""["/proc/kcore"]""", linux["maskedPaths"]!.ToJsonString());
        Assert.Equal("""["/proc/sys"]""", linux["readonlyPaths"]!.ToJsonString());
    }

    [Fact]
    public void Seccomp_uses_the_runtime_spec_field_names()
    {
        var seccomp = new OciSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = 1,
            Architectures = ["SCMP_ARCH_X86_64"],
            Syscalls =
            [
                new OciSyscall { Names = ["clone"], Action = "SCMP_ACT_ALLOW", Args = [new OciSyscallArg { Index = 0, Value = 2114060288, Op = "SCMP_CMP_MASKED_EQ" }] },
                new OciSyscall { Names = ["clone3"], Action = "SCMP_ACT_ERRNO", ErrnoRet = 38 },
            ],
        };
        Assert.Equal(
            """{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}]},{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}""",
            OciJson.Serialize(seccomp));
    }

    [Fact]
    public void A_spec_round_trips()
    {
        var spec = new OciSpec
        {
            Process = new OciProcess { Args = ["a"], Cwd = "/w", User = new OciUser { Uid = 1 } },
            Root = new OciRoot { Path = "rootfs" },
            Annotations = new Dictionary<string, string> { ["k"] = "v" },
            Linux = new OciLinux { Namespaces = [new OciNamespace { Type = "pid" }] },
        };
        string json = OciJson.Serialize(spec);
        Assert.Equal(json, OciJson.Serialize(OciJson.Deserialize<OciSpec>(json)));
    }

    [Fact]
    public async Task SpecWriter_writes_config_json_atomically_and_replaces_an_old_one()
    {
        using var dir = new TempDirectory();
        string bundle = Path.Join(dir.Path, "bundle");
        var first = new OciSpec { Root = new OciRoot { Path = "rootfs" }, Hostname = "one" };
        string path = await SpecWriter.WriteAsync(first, bundle);
        Assert.Equal(Path.Join(bundle, "config.json"), path);
        await SpecWriter.WriteAsync(first with { Hostname = "two" }, bundle);
        Assert.Equal("two", (await SpecWriter.ReadAsync(bundle)).Hostname);
        Assert.Equal(["config.json"], Directory.EnumerateFileSystemEntries(bundle).Select(Path.GetFileName));
    }
}
