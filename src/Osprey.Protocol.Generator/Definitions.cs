// The definition model and its parser. Compiled into the generator (netstandard2.0) and linked into the
// definitions check, so both read the files the same way. Format: definitions/README.md.
#pragma warning disable IDE0005 // needed by the generator, which has no implicit usings; redundant where this file is linked
using System;
using System.Collections.Generic;
using System.Globalization;

namespace Osprey.Protocol.Generator;

/// <summary>A Kafka version range: "3-13", "9+", "0", or "none".</summary>
public readonly struct VersionRange : IEquatable<VersionRange>
{
    public const short Open = short.MaxValue;

    public VersionRange(short min, short max)
    {
        Min = min;
        Max = max;
    }

    public static VersionRange None => new(1, 0);

    public short Min { get; }

    public short Max { get; }

    public bool IsNone => Min > Max;

    public bool IsOpenEnded => !IsNone && Max == Open;

    public bool Contains(int version) => version >= Min && version <= Max;

    /// <summary>The versions in both ranges.</summary>
    public VersionRange Intersect(VersionRange other)
    {
        var min = Math.Max(Min, other.Min);
        var max = Math.Min(Max, other.Max);
        return min > max ? None : new VersionRange((short)min, (short)max);
    }

    public static VersionRange Parse(string text)
    {
        text = text.Trim();
        if (text == "none" || text == "None")
        {
            return None;
        }

        if (text.EndsWith("+", StringComparison.Ordinal))
        {
            return new VersionRange(ParseVersion(text.Substring(0, text.Length - 1)), Open);
        }

        var dash = text.IndexOf('-');
        if (dash > 0)
        {
            return new VersionRange(ParseVersion(text.Substring(0, dash)), ParseVersion(text.Substring(dash + 1)));
        }

        var single = ParseVersion(text);
        return new VersionRange(single, single);
    }

    private static short ParseVersion(string text)
    {
        if (!short.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            throw new FormatException("'" + text + "' is not a version.");
        }

        return value;
    }

    public bool Equals(VersionRange other) => (IsNone && other.IsNone) || (Min == other.Min && Max == other.Max);

    public override bool Equals(object? obj) => obj is VersionRange other && Equals(other);

    public override int GetHashCode() => IsNone ? -1 : (Min << 16) | (ushort)Max;

    public override string ToString() =>
        IsNone ? "none" : Max == Open ? Min.ToString(CultureInfo.InvariantCulture) + "+" :
        Min == Max ? Min.ToString(CultureInfo.InvariantCulture) :
        Min.ToString(CultureInfo.InvariantCulture) + "-" + Max.ToString(CultureInfo.InvariantCulture);
}

public sealed class FieldDefinition
{
    public string Name { get; set; } = "";

    /// <summary>Kafka type name as written: int32, string, []Topic, []int32, Topic, records, …</summary>
    public string Type { get; set; } = "";

    public VersionRange Versions { get; set; }

    public VersionRange NullableVersions { get; set; } = VersionRange.None;

    public int? Tag { get; set; }

    public VersionRange TaggedVersions { get; set; } = VersionRange.None;

    public string? Default { get; set; }

    public bool Ignorable { get; set; }

    public bool MapKey { get; set; }

    /// <summary>A field-level override of the message's flexible versions (RequestHeader.ClientId).</summary>
    public VersionRange? FlexibleVersions { get; set; }

    public string? Entity { get; set; }

    public bool ZeroCopy { get; set; }

    public List<FieldDefinition> Fields { get; } = new();

    public int Line { get; set; }

    /// <summary>The C# property name: the field name with a capital first letter (Kafka has a few camelCase ones).</summary>
    public string PropertyName => Name.Length == 0 ? Name : char.ToUpperInvariant(Name[0]) + Name.Substring(1);

    public bool IsArray => Type.StartsWith("[]", StringComparison.Ordinal);

    /// <summary>The element type of an array, or the type itself.</summary>
    public string ElementType => IsArray ? Type.Substring(2) : Type;
}

public sealed class StructDefinition
{
    public string Name { get; set; } = "";

    public VersionRange Versions { get; set; }

    public List<FieldDefinition> Fields { get; } = new();
}

public sealed class MessageDefinition
{
    /// <summary>request, response, header or data.</summary>
    public string Kind { get; set; } = "";

    public string Name { get; set; } = "";

    public short? ApiKey { get; set; }

    public VersionRange Versions { get; set; }

    public VersionRange FlexibleVersions { get; set; } = VersionRange.None;

    public bool LatestVersionUnstable { get; set; }

    public List<string> Listeners { get; } = new();

    public List<FieldDefinition> Fields { get; } = new();

    public List<StructDefinition> CommonStructs { get; } = new();

    public string File { get; set; } = "";

    public int Line { get; set; }
}

public sealed class DefinitionException : Exception
{
    public DefinitionException(string file, int line, string message)
        : base(file + "(" + line.ToString(CultureInfo.InvariantCulture) + "): " + message)
    {
        File = file;
        LineNumber = line;
        Reason = message;
    }

    public string File { get; }

    public int LineNumber { get; }

    public string Reason { get; }
}

/// <summary>Parses one .def file: top-level blocks, fields nested by two-space indentation.</summary>
public static class DefinitionParser
{
    private static readonly string[] Primitives =
    {
        "bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "uuid", "string", "bytes", "records",
    };

    public static bool IsPrimitive(string type) => Array.IndexOf(Primitives, type) >= 0;

    public static List<MessageDefinition> Parse(string file, string text)
    {
        var messages = new List<MessageDefinition>();
        MessageDefinition? message = null;
        List<FieldDefinition>? topFields = null;
        var stack = new List<List<FieldDefinition>>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var lineNumber = i + 1;
            var raw = lines[i];
            var trimmed = raw.Trim();
            if (trimmed.Length == 0 || trimmed[0] == '#')
            {
                continue;
            }

            var indent = 0;
            while (indent < raw.Length && raw[indent] == ' ')
            {
                indent++;
            }

            if (indent % 2 != 0)
            {
                throw new DefinitionException(file, lineNumber, "indentation must be a multiple of two spaces");
            }

            var depth = indent / 2;
            var words = trimmed.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
            try
            {
                if (depth == 0)
                {
                    stack.Clear();
                    if (words[0] == "struct")
                    {
                        if (message is null || words.Length != 3)
                        {
                            throw new DefinitionException(file, lineNumber, "expected 'struct Name versions' after a message");
                        }

                        var common = new StructDefinition { Name = words[1], Versions = VersionRange.Parse(words[2]) };
                        message.CommonStructs.Add(common);
                        topFields = common.Fields;
                    }
                    else
                    {
                        message = ParseHeader(file, lineNumber, words);
                        messages.Add(message);
                        topFields = message.Fields;
                    }

                    stack.Add(topFields);
                    continue;
                }

                if (topFields is null || depth > stack.Count)
                {
                    throw new DefinitionException(file, lineNumber, "field is indented deeper than its parent");
                }

                while (stack.Count > depth)
                {
                    stack.RemoveAt(stack.Count - 1);
                }

                var field = ParseField(file, lineNumber, words);
                stack[stack.Count - 1].Add(field);
                stack.Add(field.Fields);
            }
            catch (FormatException e)
            {
                throw new DefinitionException(file, lineNumber, e.Message);
            }
        }

        return messages;
    }

    private static MessageDefinition ParseHeader(string file, int line, string[] words)
    {
        if (words.Length < 3 || (words[0] != "request" && words[0] != "response" && words[0] != "header" && words[0] != "data"))
        {
            throw new DefinitionException(file, line, "expected 'request|response|header|data Name versions=… [key=…] [flexible=…]'");
        }

        var message = new MessageDefinition { Kind = words[0], Name = words[1], File = file, Line = line };
        var sawVersions = false;
        for (var i = 2; i < words.Length; i++)
        {
            var (key, value) = SplitAttribute(words[i]);
            switch (key)
            {
                case "key":
                    message.ApiKey = short.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "versions":
                    message.Versions = VersionRange.Parse(value);
                    sawVersions = true;
                    break;
                case "flexible":
                    message.FlexibleVersions = VersionRange.Parse(value);
                    break;
                case "listeners":
                    message.Listeners.AddRange(value.Split(','));
                    break;
                case "unstable-latest":
                    message.LatestVersionUnstable = true;
                    break;
                default:
                    throw new DefinitionException(file, line, "unknown message attribute '" + key + "'");
            }
        }

        if (!sawVersions)
        {
            throw new DefinitionException(file, line, "a message needs versions=");
        }

        if ((message.Kind == "request" || message.Kind == "response") && message.ApiKey is null)
        {
            throw new DefinitionException(file, line, "a request or response needs key=");
        }

        return message;
    }

    private static FieldDefinition ParseField(string file, int line, string[] words)
    {
        if (words.Length < 3)
        {
            throw new DefinitionException(file, line, "expected 'Name type versions [attributes]'");
        }

        var field = new FieldDefinition { Name = words[0], Type = words[1], Versions = VersionRange.Parse(words[2]), Line = line };
        for (var i = 3; i < words.Length; i++)
        {
            var (key, value) = SplitAttribute(words[i]);
            switch (key)
            {
                case "nullable":
                    field.NullableVersions = VersionRange.Parse(value);
                    break;
                case "tag":
                    var at = value.IndexOf('@');
                    if (at < 0)
                    {
                        throw new DefinitionException(file, line, "tag must be written tag=N@versions");
                    }

                    field.Tag = int.Parse(value.Substring(0, at), NumberStyles.None, CultureInfo.InvariantCulture);
                    field.TaggedVersions = VersionRange.Parse(value.Substring(at + 1));
                    break;
                case "default":
                    field.Default = value == "\"\"" ? "" : value;
                    break;
                case "ignorable":
                    field.Ignorable = true;
                    break;
                case "mapkey":
                    field.MapKey = true;
                    break;
                case "flexible":
                    field.FlexibleVersions = VersionRange.Parse(value);
                    break;
                case "entity":
                    field.Entity = value;
                    break;
                case "zerocopy":
                    field.ZeroCopy = true;
                    break;
                default:
                    throw new DefinitionException(file, line, "unknown field attribute '" + key + "'");
            }
        }

        return field;
    }

    private static (string Key, string Value) SplitAttribute(string word)
    {
        var eq = word.IndexOf('=');
        return eq < 0 ? (word, "") : (word.Substring(0, eq), word.Substring(eq + 1));
    }
}
