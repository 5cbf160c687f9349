using Hull.Core;

namespace Hull.Runtime.Spec;

/// <summary>The process's argv and environment from the image config and the CRI config (containerd's rules).</summary>
public static class ProcessConfig
{
    public const string DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>
    /// Kubernetes semantics (containerd's WithProcessArgs, from Docker): a CRI command replaces the entrypoint and
    /// drops the image's cmd unless CRI args are given; CRI args replace the cmd. An image entrypoint of [""] means
    /// "no entrypoint". Nothing to run at all is an InvalidArgument error.
    /// </summary>
    public static IReadOnlyList<string> Args(ContainerConfig container, ImageConfig image)
    {
        IReadOnlyList<string> command = container.Command, args = container.Args;
        if (command.Count == 0)
        {
            if (args.Count == 0) args = image.Cmd;
            command = image.Entrypoint is [""] ? [] : image.Entrypoint;
        }
        if (command.Count == 0 && args.Count == 0)
            throw new HullException(ErrorKind.InvalidArgument, $"container \"{container.Name}\" has no command: neither the container config nor the image gives one");
        return [.. command, .. args];
    }

    /// <summary>
    /// PATH (the default, unless the image or CRI sets one), HOSTNAME, then the image's env, then CRI's env, each later
    /// value replacing an earlier one in place; HOME from the image's passwd when nothing set it.
    /// </summary>
    public static IReadOnlyList<string> Env(ImageConfig image, IReadOnlyList<EnvVar> cri, string? hostname, string? home)
    {
        var env = ReplaceOrAppend([DefaultPathEnv], []);
        if (!string.IsNullOrEmpty(hostname)) env = ReplaceOrAppend(env, [$"HOSTNAME={hostname}"]);
        env = ReplaceOrAppend(env, [.. image.Env, .. cri.Select(e => $"{e.Key}={e.Value}")]);
        if (home is not null && !env.Any(e => e.StartsWith("HOME=", StringComparison.Ordinal)))
            env = [.. env, $"HOME={home}"];
        return env;
    }

    /// <summary>
    /// containerd's replaceOrAppendEnvValues: an override replaces the default with the same key where it stands, a
    /// new key is appended, and an override without "=" removes the key.
    /// </summary>
    public static IReadOnlyList<string> ReplaceOrAppend(IReadOnlyList<string> defaults, IReadOnlyList<string> overrides)
    {
        var results = new List<string?>(defaults);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < defaults.Count; i++) index[Key(defaults[i])] = i;
        foreach (var value in overrides)
        {
            int eq = value.IndexOf('=');
            string key = eq < 0 ? value : value[..eq];
            if (eq < 0)
            {
                if (index.TryGetValue(key, out int at)) results[at] = null;
                continue;
            }
            if (index.TryGetValue(key, out int existing)) results[existing] = value;
            else
            {
                results.Add(value);
                index[key] = results.Count - 1;
            }
        }
        return results.Where(r => r is not null).Select(r => r!).ToArray();
    }

    private static string Key(string entry)
    {
        int eq = entry.IndexOf('=');
        return eq < 0 ? entry : entry[..eq];
    }
}
