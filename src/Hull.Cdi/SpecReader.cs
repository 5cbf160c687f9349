using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Hull.Cdi;

/// <summary>A spec file that cannot be read as a CDI spec: <see cref="Field"/> (a JSON path such as
/// "devices[0].containerEdits.deviceNodes[1].major", empty for the whole file) and the reason.</summary>
public sealed class CdiFormatException(string field, string reason) : Exception(field.Length == 0 ? reason : $"{field}: {reason}")
{
    public string Field { get; } = field;
    public string Reason { get; } = reason;
}

/// <summary>
/// Reads CDI spec files the way the reference implementation does (sigs.k8s.io/yaml's UnmarshalStrict: YAML is turned into
/// JSON, which is decoded into the spec types): unknown fields are errors, field names match case-insensitively as in Go's
/// encoding/json, a null is the same as an absent field, and a YAML scalar that resolves to a number or boolean is accepted
/// where the spec wants a string. Decoding is done here rather than with System.Text.Json's serializer so that every error
/// names the field in the spec's own terms ("devices[0].containerEdits.deviceNodes[1].major: expected an integer").
/// </summary>
public static class SpecReader
{
    /// <summary>Reads a spec from <paramref name="data"/>; JSON for a ".json" path, YAML otherwise.</summary>
    public static CdiSpec Parse(ReadOnlySpan<byte> data, string path)
    {
        bool yaml = !path.EndsWith(".json", StringComparison.Ordinal);
        JsonNode? root = yaml ? ParseYaml(Encoding.UTF8.GetString(data)) : ParseJson(data);
        if (root is null) throw new CdiFormatException("", "the file holds no spec data");
        try
        {
            return new Decoder(yaml).Spec(root);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // JsonObject rejects a key given twice when it is first read.
            throw new CdiFormatException("", $"not a valid spec: {e.Message}");
        }
    }

    private static JsonNode? ParseJson(ReadOnlySpan<byte> data)
    {
        try
        {
            return JsonNode.Parse(data, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new CdiFormatException("", $"not valid JSON: line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {FirstSentence(e.Message)}");
        }
    }

    private static JsonNode? ParseYaml(string text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new CdiFormatException("", $"not valid YAML: line {e.Start.Line}, column {e.Start.Column}: {(e.InnerException ?? e).Message}");
        }
        // Like sigs.k8s.io/yaml, only the first document counts.
        return stream.Documents.Count == 0 ? null : FromYaml(stream.Documents[0].RootNode);
    }

    private static JsonNode? FromYaml(YamlNode node) => node switch
    {
        YamlMappingNode map => FromYamlMapping(map),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(FromYaml).ToArray()),
        YamlScalarNode scalar => FromYamlScalar(scalar),
        _ => throw new CdiFormatException("", $"unsupported YAML node at line {node.Start.Line}"),
    };

    private static JsonObject FromYamlMapping(YamlMappingNode map)
    {
        var obj = new JsonObject();
        foreach (var (key, value) in map.Children)
        {
            if (key is not YamlScalarNode { Value: { } name })
                throw new CdiFormatException("", $"line {key.Start.Line}: a mapping key must be a plain string");
            obj[name] = FromYaml(value);
        }
        return obj;
    }

    // YAML 1.1 scalar resolution as go-yaml v2 does it (the parser behind sigs.k8s.io/yaml): plain scalars may be null,
    // booleans (yes/no/on/off too) or numbers (0x.., 0o.., leading-0 octal, underscores); quoted ones are strings.
    private static JsonNode? FromYamlScalar(YamlScalarNode scalar)
    {
        string value = scalar.Value ?? "";
        if (scalar.Style != ScalarStyle.Plain || !scalar.Tag.IsEmpty) return JsonValue.Create(value);
        switch (value)
        {
            case "" or "~" or "null" or "Null" or "NULL": return null;
            case "y" or "Y" or "yes" or "Yes" or "YES" or "true" or "True" or "TRUE" or "on" or "On" or "ON": return JsonValue.Create(true);
            case "n" or "N" or "no" or "No" or "NO" or "false" or "False" or "FALSE" or "off" or "Off" or "OFF": return JsonValue.Create(false);
        }
        if (TryParseYamlInteger(value, out long integer)) return JsonValue.Create(integer);
        if (value.Length > 0 && (char.IsAsciiDigit(value[0]) || value[0] is '-' or '+' or '.') &&
            double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) && double.IsFinite(number))
            return JsonValue.Create(number);
        return JsonValue.Create(value);
    }

    private static bool TryParseYamlInteger(string text, out long value)
    {
        value = 0;
        string s = text.Replace("_", "", StringComparison.Ordinal);
        bool negative = s.StartsWith('-');
        if (s.StartsWith('-') || s.StartsWith('+')) s = s[1..];
        if (s.Length == 0) return false;
        (string digits, int radix) = s switch
        {
            _ when s.StartsWith("0x", StringComparison.Ordinal) => (s[2..], 16),
            _ when s.StartsWith("0o", StringComparison.Ordinal) => (s[2..], 8),
            _ when s.StartsWith("0b", StringComparison.Ordinal) => (s[2..], 2),
            _ when s.Length > 1 && s[0] == '0' => (s[1..], 8),
            _ => (s, 10),
        };
        if (digits.Length == 0) return false;
        try
        {
            ulong magnitude = 0;
            foreach (char c in digits)
            {
                int d = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiHexDigitLower(c) ? c - 'a' + 10 : char.IsAsciiHexDigitUpper(c) ? c - 'A' + 10 : 99;
                if (d >= radix) return false;
                magnitude = checked(magnitude * (ulong)radix + (ulong)d);
            }
            value = negative ? checked(-(long)magnitude) : checked((long)magnitude);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    private static string FirstSentence(string message) => message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0].TrimEnd();

    /// <summary>Decodes the JSON tree into spec records, naming the field of every error.</summary>
    private sealed class Decoder(bool yaml)
    {
        public CdiSpec Spec(JsonNode root)
        {
            var spec = new CdiSpec();
            foreach (var (name, value, at) in Fields(root, "", "cdiVersion", "kind", "annotations", "devices", "containerEdits"))
            {
                spec = name switch
                {
                    "cdiVersion" => spec with { CdiVersion = String(value, at) },
                    "kind" => spec with { Kind = String(value, at) },
                    "annotations" => spec with { Annotations = Map(value, at) },
                    "devices" => spec with { Devices = List(value, at, Device) },
                    _ => spec with { ContainerEdits = Edits(value, at) },
                };
            }
            return spec;
        }

        private CdiDevice Device(JsonNode? node, string path)
        {
            var device = new CdiDevice();
            foreach (var (name, value, at) in Fields(node, path, "name", "annotations", "containerEdits"))
            {
                device = name switch
                {
                    "name" => device with { Name = String(value, at) },
                    "annotations" => device with { Annotations = Map(value, at) },
                    _ => device with { ContainerEdits = Edits(value, at) },
                };
            }
            return device;
        }

        private CdiContainerEdits Edits(JsonNode? node, string path)
        {
            var edits = new CdiContainerEdits();
            foreach (var (name, value, at) in Fields(node, path, "env", "deviceNodes", "netDevices", "hooks", "mounts", "intelRdt", "additionalGids"))
            {
                edits = name switch
                {
                    "env" => edits with { Env = Strings(value, at) },
                    "deviceNodes" => edits with { DeviceNodes = List(value, at, DeviceNode) },
                    "netDevices" => edits with { NetDevices = List(value, at, NetDevice) },
                    "hooks" => edits with { Hooks = List(value, at, Hook) },
                    "mounts" => edits with { Mounts = List(value, at, Mount) },
                    "intelRdt" => edits with { IntelRdt = value is null ? null : IntelRdt(value, at) },
                    _ => edits with { AdditionalGids = List(value, at, (v, p) => UInt32(v, p)) },
                };
            }
            return edits;
        }

        private CdiDeviceNode DeviceNode(JsonNode? node, string path)
        {
            var d = new CdiDeviceNode();
            foreach (var (name, value, at) in Fields(node, path, "path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"))
            {
                d = name switch
                {
                    "path" => d with { Path = String(value, at) },
                    "hostPath" => d with { HostPath = String(value, at) },
                    "type" => d with { Type = String(value, at) },
                    "major" => d with { Major = Int64(value, at) },
                    "minor" => d with { Minor = Int64(value, at) },
                    "fileMode" => d with { FileMode = value is null ? null : UInt32(value, at) },
                    "permissions" => d with { Permissions = String(value, at) },
                    "uid" => d with { Uid = value is null ? null : UInt32(value, at) },
                    _ => d with { Gid = value is null ? null : UInt32(value, at) },
                };
            }
            return d;
        }

        private CdiNetDevice NetDevice(JsonNode? node, string path)
        {
            var d = new CdiNetDevice();
            foreach (var (name, value, at) in Fields(node, path, "hostInterfaceName", "name"))
                d = name == "name" ? d with { Name = String(value, at) } : d with { HostInterfaceName = String(value, at) };
            return d;
        }

        private CdiHook Hook(JsonNode? node, string path)
        {
            var h = new CdiHook();
            foreach (var (name, value, at) in Fields(node, path, "hookName", "path", "args", "env", "timeout"))
            {
                h = name switch
                {
                    "hookName" => h with { HookName = String(value, at) },
                    "path" => h with { Path = String(value, at) },
                    "args" => h with { Args = Strings(value, at) },
                    "env" => h with { Env = Strings(value, at) },
                    _ => h with { Timeout = value is null ? null : (int)Integer(value, at, int.MinValue, int.MaxValue) },
                };
            }
            return h;
        }

        private CdiMount Mount(JsonNode? node, string path)
        {
            var m = new CdiMount();
            foreach (var (name, value, at) in Fields(node, path, "hostPath", "containerPath", "options", "type"))
            {
                m = name switch
                {
                    "hostPath" => m with { HostPath = String(value, at) },
                    "containerPath" => m with { ContainerPath = String(value, at) },
                    "options" => m with { Options = Strings(value, at) },
                    _ => m with { Type = String(value, at) },
                };
            }
            return m;
        }

        private CdiIntelRdt IntelRdt(JsonNode? node, string path)
        {
            var r = new CdiIntelRdt();
            foreach (var (name, value, at) in Fields(node, path, "closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring"))
            {
                r = name switch
                {
                    "closID" => r with { ClosId = String(value, at) },
                    "l3CacheSchema" => r with { L3CacheSchema = String(value, at) },
                    "memBwSchema" => r with { MemBwSchema = String(value, at) },
                    "schemata" => r with { Schemata = value is null ? null : Strings(value, at) },
                    _ => r with { EnableMonitoring = Bool(value, at) },
                };
            }
            return r;
        }

        /// <summary>The fields of an object by their canonical name; an unknown field is an error.</summary>
        private static IEnumerable<(string Name, JsonNode? Value, string Path)> Fields(JsonNode? node, string path, params string[] known)
        {
            if (node is null) yield break;
            if (node is not JsonObject obj) throw new CdiFormatException(path, $"expected an object, got {Describe(node)}");
            foreach (var (key, value) in obj)
            {
                string? name = known.FirstOrDefault(k => k == key) ?? known.FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));
                string at = path.Length == 0 ? key : $"{path}.{key}";
                if (name is null) throw new CdiFormatException(at, $"unknown field \"{key}\"");
                yield return (name, value, path.Length == 0 ? name : $"{path}.{name}");
            }
        }

        private static IReadOnlyList<T> List<T>(JsonNode? node, string path, Func<JsonNode?, string, T> element)
        {
            if (node is null) return [];
            if (node is not JsonArray array) throw new CdiFormatException(path, $"expected a list, got {Describe(node)}");
            var result = new T[array.Count];
            for (int i = 0; i < array.Count; i++) result[i] = element(array[i], $"{path}[{i}]");
            return result;
        }

        private IReadOnlyList<string> Strings(JsonNode? node, string path) => List(node, path, String);

        private IReadOnlyDictionary<string, string>? Map(JsonNode? node, string path)
        {
            if (node is null) return null;
            if (node is not JsonObject obj) throw new CdiFormatException(path, $"expected a map of strings, got {Describe(node)}");
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in obj) map[key] = String(value, $"{path}.{key}");
            return map;
        }

        private string String(JsonNode? node, string path)
        {
            if (node is null) return "";
            if (node is JsonValue v)
            {
                if (v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
                // A YAML plain scalar such as 1.0 or true where a string is wanted (sigs.k8s.io/yaml converts these).
                if (yaml && v.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False) return v.ToJsonString();
            }
            throw new CdiFormatException(path, $"expected a string, got {Describe(node)}");
        }

        private static bool Bool(JsonNode? node, string path)
        {
            if (node is null) return false;
            if (node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return v.GetValue<bool>();
            throw new CdiFormatException(path, $"expected true or false, got {Describe(node)}");
        }

        private static long Int64(JsonNode? node, string path) => node is null ? 0 : Integer(node, path, long.MinValue, long.MaxValue);

        private static uint UInt32(JsonNode? node, string path) => (uint)Integer(node, path, 0, uint.MaxValue);

        private static long Integer(JsonNode? node, string path, long min, long max)
        {
            if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
            {
                if (!v.TryGetValue(out long value) && !(v.TryGetValue(out JsonElement e) && e.TryGetInt64(out value)))
                    throw new CdiFormatException(path, $"expected an integer, got {v.ToJsonString()}");
                if (value < min || value > max) throw new CdiFormatException(path, $"{value} is out of range ({min} to {max})");
                return value;
            }
            throw new CdiFormatException(path, $"expected an integer, got {Describe(node)}");
        }

        private static string Describe(JsonNode? node) => node switch
        {
            null => "null",
            JsonObject => "an object",
            JsonArray => "a list",
            JsonValue v => v.GetValueKind() switch
            {
                JsonValueKind.String => $"the string {v.ToJsonString()}",
                JsonValueKind.Number => $"the number {v.ToJsonString()}",
                _ => v.ToJsonString(),
            },
            _ => node.ToJsonString(),
        };
    }
}
