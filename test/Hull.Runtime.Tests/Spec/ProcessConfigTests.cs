using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class ProcessConfigTests
{
    public static TheoryData<string, string[], string[], string[], string[], string[]> ArgsCases => new()
    {
        // case, CRI command, CRI args, image entrypoint, image cmd, expected argv
        { "image only", [], [], ["/entry"], ["a", "b"], ["/entry", "a", "b"] },
        { "CRI args replace cmd", [], ["x"], ["/entry"], ["a"], ["/entry", "x"] },
        { "CRI command drops cmd", ["/cmd"], [], ["/entry"], ["a"], ["/cmd"] },
        { "CRI command and args", ["/cmd"], ["x", "y"], ["/entry"], ["a"], ["/cmd", "x", "y"] },
        { "cmd only image", [], [], [], ["/bin/sh", "-c", "true"], ["/bin/sh", "-c", "true"] },
        { "empty-string entrypoint means none", [], [], [""], ["/bin/sh"], ["/bin/sh"] },
        { "args with cmd-only image", [], ["/bin/echo", "hi"], [], ["/bin/sh"], ["/bin/echo", "hi"] },
    };

    [Theory]
    [MemberData(nameof(ArgsCases))]
    public void Args_follow_kubernetes_command_and_args_semantics(string @case, string[] command, string[] args, string[] entrypoint, string[] cmd, string[] expected)
    {
        var container = new ContainerConfig { Name = "c", Command = command, Args = args };
        var image = new ImageConfig { Entrypoint = entrypoint, Cmd = cmd };
        Assert.True(expected.SequenceEqual(ProcessConfig.Args(container, image)), @case);
    }

    [Fact]
    public void Nothing_to_run_is_InvalidArgument()
    {
        var e = Assert.Throws<HullException>(() => ProcessConfig.Args(new ContainerConfig { Name = "c" }, new ImageConfig()));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"c\"", e.Message);
    }

    [Fact]
    public void Env_puts_the_default_PATH_and_HOSTNAME_first_then_image_then_CRI()
    {
        var env = ProcessConfig.Env(new ImageConfig { Env = ["A=image", "B=image"] }, [new("B", "cri"), new("C", "")], "web-0", "/home/app");
        Assert.Equal([ProcessConfig.DefaultPathEnv, "HOSTNAME=web-0", "A=image", "B=cri", "C=", "HOME=/home/app"], env);
    }

    [Fact]
    public void The_image_PATH_replaces_the_default_in_place_and_CRI_wins_over_the_image()
    {
        var env = ProcessConfig.Env(new ImageConfig { Env = ["PATH=/opt/bin"] }, [new("PATH", "/cri/bin")], null, null);
        Assert.Equal(["PATH=/cri/bin"], env);
    }

    [Fact]
    public void HOME_from_passwd_only_when_nothing_set_it()
    {
        var env = ProcessConfig.Env(new ImageConfig { Env = ["HOME=/data"] }, [], null, "/home/app");
        Assert.Contains("HOME=/data", env);
        Assert.DoesNotContain("HOME=/home/app", env);
    }

    [Fact]
    public void An_entry_without_equals_unsets_the_key_like_containerd()
    {
        var result = ProcessConfig.ReplaceOrAppend(["A=1", "B=2"], ["A", "C=3", "B=4"]);
        Assert.Equal(["B=4", "C=3"], result);
    }
}
