using Hull.Core;

namespace Hull.Nri;

/// <summary>Plugin names and indices as containerd/nri checks them (pkg/api/plugin.go).</summary>
public static class PluginNames
{
    /// <summary>Splits a pre-installed plugin's file name "NN-name" into its index and name.</summary>
    public static (string Index, string Name) Parse(string fileName)
    {
        int dash = fileName.IndexOf('-');
        if (dash < 0)
            throw new HullException(ErrorKind.InvalidArgument, $"invalid plugin name \"{fileName}\", idx-pluginname expected");
        var index = fileName[..dash];
        CheckIndex(index);
        return (index, fileName[(dash + 1)..]);
    }

    public static void CheckIndex(string index)
    {
        if (index.Length != 2)
            throw new HullException(ErrorKind.InvalidArgument, $"invalid plugin index \"{index}\", must be 2 digits");
        if (!char.IsAsciiDigit(index[0]) || !char.IsAsciiDigit(index[1]))
            throw new HullException(ErrorKind.InvalidArgument, $"invalid plugin index \"{index}\" (not [0-9][0-9])");
    }

    public static void CheckName(string name)
    {
        if (name.Length == 0) throw new HullException(ErrorKind.InvalidArgument, "invalid plugin name: name is empty");
        foreach (var c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '+'))
                throw new HullException(ErrorKind.InvalidArgument, $"invalid plugin name \"{name}\": contains invalid character '{c}'");
    }
}
