using Tomlyn.Model;
using Tomlyn.Syntax;

namespace Hull.Config.TomlFiles;

/// <summary>
/// Turns a syntax tree that Tomlyn has validated (<c>SyntaxParser.Parse(…, validate: true)</c>: no duplicate keys, no
/// redefined tables) into Tomlyn's value model, recording where each key was written. Tomlyn's own
/// <c>TomlSerializer.Deserialize&lt;TomlTable&gt;</c> builds the same model but keeps no positions (and does not apply
/// TOML's redefinition rules), and diagnostics must name the line of the key they are about.
/// </summary>
internal sealed class TomlTreeBuilder
{
    private readonly KeyPositions _positions = new();

    private TomlTreeBuilder()
    {
    }

    public static (TomlTable Root, KeyPositions Positions) Build(DocumentSyntax document)
    {
        var builder = new TomlTreeBuilder();
        var root = new TomlTable();
        foreach (var keyValue in document.KeyValues)
        {
            builder.Assign(root, keyValue);
        }

        foreach (var header in document.Tables)
        {
            builder.Define(root, header);
        }

        return (root, builder._positions);
    }

    // [a.b.c] or [[a.b.c]] and the key/values under it.
    private void Define(TomlTable root, TableSyntaxBase header)
    {
        var (parent, name, position) = Walk(root, header.Name!);
        TomlTable table;
        if (header is TableArraySyntax)
        {
            if (!parent.TryGetValue<TomlTableArray>(name, out var array))
            {
                parent[name] = array = new TomlTableArray();
                _positions.Set(parent, name, position);
            }

            table = new TomlTable();
            array.Add(table);
        }
        else
        {
            // A table that only existed as part of a longer header path is defined here.
            if (!parent.TryGetValue<TomlTable>(name, out var existing))
            {
                parent[name] = existing = new TomlTable();
            }

            table = existing;
            _positions.Set(parent, name, position);
        }

        foreach (var keyValue in header.Items)
        {
            Assign(table, keyValue);
        }
    }

    // key = value and dotted.key = value
    private void Assign(TomlTable table, KeyValueSyntax keyValue)
    {
        var (target, name, position) = Walk(table, keyValue.Key!);
        target[name] = Value(keyValue.Value!);
        _positions.Set(target, name, position);
    }

    // Follows all but the last segment of the key, creating the tables on the way (a path through an array of tables
    // goes to its latest element); returns the table the last segment belongs to, and that segment.
    private (TomlTable Table, string Name, SourcePosition Position) Walk(TomlTable table, KeySyntax key)
    {
        var (name, position) = Segment(key.Key!);
        foreach (var dotted in key.DotKeys)
        {
            if (!table.TryGetValue(name, out object? existing))
            {
                var child = new TomlTable();
                table[name] = child;
                _positions.Set(table, name, position);
                table = child;
            }
            else
            {
                table = existing switch
                {
                    TomlTable child => child,
                    TomlTableArray array => array[^1],
                    _ => throw new InvalidOperationException($"TOML validation let `{name}` be both a value and a table"),
                };
            }

            (name, position) = Segment(dotted.Key!);
        }

        return (table, name, position);
    }

    private object Value(ValueSyntax value)
    {
        switch (value)
        {
            case StringValueSyntax s:
                return s.Value!;
            case IntegerValueSyntax i:
                return i.Value;
            case FloatValueSyntax f:
                return f.Value;
            case BooleanValueSyntax b:
                return b.Value;
            case DateTimeValueSyntax d:
                return d.Value;
            case ArraySyntax array:
                var items = new TomlArray();
                foreach (var item in array.Items)
                {
                    items.Add(Value(item.Value!));
                }

                return items;
            case InlineTableSyntax inline:
                var table = new TomlTable(inline: true);
                foreach (var item in inline.Items)
                {
                    Assign(table, item.KeyValue!);
                }

                return table;
            default:
                throw new InvalidOperationException($"unexpected TOML value syntax {value.Kind}");
        }
    }

    private static (string Name, SourcePosition Position) Segment(BareKeyOrStringValueSyntax key) =>
        (key is BareKeySyntax bare ? bare.Key!.Text! : ((StringValueSyntax)key).Value!, SourcePosition.From(key.Span.Start));
}
