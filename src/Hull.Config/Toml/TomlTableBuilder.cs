namespace Hull.Config.Toml;

/// <summary>One part of a dotted key, with where it was written.</summary>
internal readonly record struct TomlKeySegment(string Name, TomlPosition Position);

/// <summary>
/// Builds the table tree and enforces TOML's definition rules:
/// a table is defined once (by a header, a dotted key or an inline table), headers may define
/// tables that were only created implicitly by earlier headers, dotted keys may only extend tables
/// they created themselves (or that were implicit), inline tables and static arrays are immutable,
/// and <c>[[x]]</c> may only append to arrays created by <c>[[x]]</c>.
/// </summary>
internal sealed class TomlTableBuilder
{
    private readonly string? _sourceName;

    public TomlTableBuilder(string? sourceName)
    {
        _sourceName = sourceName;
        Root = new TomlTable(TomlTableKind.Header) { Position = new TomlPosition(1, 1) };
        Current = Root;
    }

    public TomlTable Root { get; }

    /// <summary>The table that key/value lines currently go into (the latest header's table).</summary>
    public TomlTable Current { get; private set; }

    /// <summary>Handles <c>[a.b.c]</c>.</summary>
    public void DefineTable(IReadOnlyList<TomlKeySegment> path)
    {
        TomlTable parent = WalkHeaderPath(path);
        TomlKeySegment last = path[^1];
        if (!parent.TryGetValue(last.Name, out object? existing))
        {
            var table = new TomlTable(TomlTableKind.Header) { Position = last.Position };
            parent.AddParsed(last.Name, table, last.Position);
            Current = table;
            return;
        }

        if (existing is TomlTable { Kind: TomlTableKind.Implicit } implicitTable)
        {
            // Earlier headers only created it on the way to a sub-table; this header defines it.
            implicitTable.Kind = TomlTableKind.Header;
            implicitTable.Position = last.Position;
            parent.SetPosition(last.Name, last.Position);
            Current = implicitTable;
            return;
        }

        string key = Format(path, path.Count);
        string reason = existing is TomlTable { Kind: TomlTableKind.Header }
            ? $"table `{key}` is already defined{Previously(parent, last.Name)}"
            : $"cannot define table `{key}`: it is already defined as {Article(existing)}{Previously(parent, last.Name)}";
        throw Error(last.Position, reason, key);
    }

    /// <summary>Handles <c>[[a.b.c]]</c>: appends a new table to the array of tables.</summary>
    public void AppendArrayTable(IReadOnlyList<TomlKeySegment> path)
    {
        TomlTable parent = WalkHeaderPath(path);
        TomlKeySegment last = path[^1];
        TomlArray array;
        if (!parent.TryGetValue(last.Name, out object? existing))
        {
            array = new TomlArray(isArrayOfTables: true);
            parent.AddParsed(last.Name, array, last.Position);
        }
        else if (existing is TomlArray { IsArrayOfTables: true } aot)
        {
            array = aot;
        }
        else
        {
            string key = Format(path, path.Count);
            throw Error(
                last.Position,
                $"cannot define array of tables `{key}`: it is already defined as {Article(existing)}{Previously(parent, last.Name)}",
                key);
        }

        var table = new TomlTable(TomlTableKind.Header) { Position = last.Position };
        array.AddParsed(table);
        Current = table;
    }

    /// <summary>Handles <c>a.b.c = value</c> inside <paramref name="target"/> (the current table or an inline table).</summary>
    public void SetValue(TomlTable target, IReadOnlyList<TomlKeySegment> path, object value)
    {
        TomlTable table = target;
        for (int k = 0; k < path.Count - 1; k++)
        {
            TomlKeySegment segment = path[k];
            if (!table.TryGetValue(segment.Name, out object? existing))
            {
                var child = new TomlTable(TomlTableKind.Dotted) { Position = segment.Position };
                table.AddParsed(segment.Name, child, segment.Position);
                table = child;
                continue;
            }

            // Only formatted for error messages.
            string Prefix() => Format(path, k + 1);
            switch (existing)
            {
                case TomlTable { Kind: TomlTableKind.Dotted } dotted:
                    table = dotted;
                    break;
                case TomlTable { Kind: TomlTableKind.Implicit } implicitTable:
                    // Only created on the way to a sub-table header; the dotted key now defines it,
                    // so a later [header] for it is a redefinition.
                    implicitTable.Kind = TomlTableKind.Dotted;
                    table = implicitTable;
                    break;
                case TomlTable { Kind: TomlTableKind.Inline }:
                    throw Error(segment.Position, $"cannot add keys to inline table `{Prefix()}`: inline tables are immutable{Previously(table, segment.Name)}", Prefix());
                case TomlTable:
                    throw Error(segment.Position, $"cannot add keys to table `{Prefix()}` with a dotted key: it is defined by a [header]{Previously(table, segment.Name)}", Prefix());
                default:
                    throw Error(segment.Position, $"cannot use `{Prefix()}` as a table: it is already defined as {Article(existing)}{Previously(table, segment.Name)}", Prefix());
            }
        }

        TomlKeySegment last = path[^1];
        if (table.ContainsKey(last.Name))
        {
            string key = Format(path, path.Count);
            throw Error(last.Position, $"duplicate key `{key}`{Previously(table, last.Name)}", key);
        }

        // An inline table is "defined" by the key it is assigned to.
        if (value is TomlTable inline)
        {
            inline.Position = last.Position;
        }

        table.AddParsed(last.Name, value, last.Position);
    }

    // Follows all but the last segment of a header, creating implicit tables as needed.
    private TomlTable WalkHeaderPath(IReadOnlyList<TomlKeySegment> path)
    {
        TomlTable table = Root;
        for (int k = 0; k < path.Count - 1; k++)
        {
            TomlKeySegment segment = path[k];
            if (!table.TryGetValue(segment.Name, out object? existing))
            {
                var child = new TomlTable(TomlTableKind.Implicit) { Position = segment.Position };
                table.AddParsed(segment.Name, child, segment.Position);
                table = child;
                continue;
            }

            string Prefix() => Format(path, k + 1);
            table = existing switch
            {
                TomlTable { Kind: TomlTableKind.Inline } =>
                    throw Error(segment.Position, $"cannot add a sub-table to inline table `{Prefix()}`: inline tables are immutable{Previously(table, segment.Name)}", Prefix()),
                TomlTable child => child,

                // A header path through an array of tables refers to its most recent element.
                TomlArray { IsArrayOfTables: true, Count: > 0 } aot => (TomlTable)aot[^1],
                TomlArray =>
                    throw Error(segment.Position, $"cannot add a sub-table to `{Prefix()}`: static arrays are immutable{Previously(table, segment.Name)}", Prefix()),
                _ => throw Error(segment.Position, $"cannot use `{Prefix()}` as a table: it is already defined as {Article(existing)}{Previously(table, segment.Name)}", Prefix()),
            };
        }

        return table;
    }

    private static string Format(IReadOnlyList<TomlKeySegment> path, int count) =>
        TomlValues.FormatKeyPath(path.Take(count).Select(s => s.Name));

    private static string Article(object value)
    {
        if (value is TomlTable { Kind: TomlTableKind.Dotted })
        {
            return "a table by dotted keys";
        }

        string name = TomlValues.TypeName(value);
        return (name[0] is 'a' or 'e' or 'i' or 'o' or 'u' ? "an " : "a ") + name;
    }

    private static string Previously(TomlTable table, string key)
    {
        TomlPosition position = table.GetPosition(key);
        return position.IsKnown ? $" (at line {position.Line}, column {position.Column})" : string.Empty;
    }

    private TomlException Error(TomlPosition position, string reason, string key) => new(reason, _sourceName, position, key);
}
