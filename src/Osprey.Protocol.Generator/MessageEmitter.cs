// Turns one parsed message definition into C#: a class per message with a nested class per struct, each
// with Read, Write, Size and IsDefault for any version. The wire rules it encodes:
//   * flexible versions use compact lengths (uvarint length+1) and end every struct with tagged fields;
//   * a field outside its versions is not on the wire; writing a non-default value there is an error
//     unless the field is ignorable;
//   * nullable structs carry an int8 marker (-1 null, 1 present) in their nullable versions;
//   * tagged fields are written in ascending tag order and only when not default; unknown tags are skipped.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace Osprey.Protocol.Generator;

public sealed class MessageEmitter
{
    private static readonly HashSet<string> ReservedMembers = new(StringComparer.Ordinal)
    {
        "Read", "Write", "Size", "IsDefault", "LowestSupportedVersion", "HighestSupportedVersion", "FirstFlexibleVersion",
        "GetType", "ToString", "Equals", "GetHashCode",
    };

    private readonly MessageDefinition _message;
    private readonly VersionRange _universe;
    private readonly Dictionary<string, StructModel> _structs = new(StringComparer.Ordinal);
    private readonly List<StructModel> _structOrder = new();
    private readonly StringBuilder _out = new();
    private int _indent;
    private int _temp;

    private MessageEmitter(MessageDefinition message)
    {
        _message = message;
        _universe = message.Versions;
    }

    public static string ClassName(MessageDefinition message) => message.Name;

    /// <summary>Generates the source for one message, or throws <see cref="DefinitionException"/>.</summary>
    public static string Emit(MessageDefinition message)
    {
        var emitter = new MessageEmitter(message);
        emitter.CollectStructs();
        return emitter.EmitFile();
    }

    private sealed class StructModel
    {
        public StructModel(string kafkaName, string className, List<FieldDefinition> fields)
        {
            KafkaName = kafkaName;
            ClassName = className;
            Fields = fields;
        }

        public string KafkaName { get; }

        public string ClassName { get; }

        public List<FieldDefinition> Fields { get; }
    }

    private DefinitionException Error(int line, string message) => new(_message.File, line, message);

    // ---- struct discovery and naming ----------------------------------------------------------------------

    private void CollectStructs()
    {
        var topNames = new HashSet<string>(_message.Fields.Select(Prop), StringComparer.Ordinal);
        var common = _message.CommonStructs.ToDictionary(s => s.Name, s => s, StringComparer.Ordinal);
        var pending = new Queue<List<FieldDefinition>>();
        pending.Enqueue(_message.Fields);
        while (pending.Count > 0)
        {
            foreach (var field in pending.Dequeue())
            {
                CheckMemberName(field);
                if (DefinitionParser.IsPrimitive(field.ElementType))
                {
                    if (field.Fields.Count > 0)
                    {
                        throw Error(field.Line, "a primitive field cannot have child fields");
                    }

                    continue;
                }

                var kafkaName = field.ElementType;
                List<FieldDefinition> fields;
                if (field.Fields.Count > 0)
                {
                    if (common.ContainsKey(kafkaName))
                    {
                        throw Error(field.Line, "struct " + kafkaName + " is defined inline and as a common struct");
                    }

                    fields = field.Fields;
                }
                else if (common.TryGetValue(kafkaName, out var commonStruct))
                {
                    fields = commonStruct.Fields;
                }
                else
                {
                    throw Error(field.Line, "unknown type '" + field.Type + "'");
                }

                if (_structs.TryGetValue(kafkaName, out var existing))
                {
                    if (!ReferenceEquals(existing.Fields, fields))
                    {
                        throw Error(field.Line, "struct " + kafkaName + " is defined twice");
                    }

                    continue;
                }

                var className = kafkaName;
                if (topNames.Contains(className) || fields.Any(f => Prop(f) == className) || className == _message.Name
                    || ReservedMembers.Contains(className))
                {
                    className += "Data";
                }

                var model = new StructModel(kafkaName, className, fields);
                _structs.Add(kafkaName, model);
                _structOrder.Add(model);
                pending.Enqueue(fields);
            }
        }
    }

    private static string Prop(FieldDefinition field) => field.PropertyName;

    private void CheckMemberName(FieldDefinition field)
    {
        if (ReservedMembers.Contains(Prop(field)))
        {
            throw Error(field.Line, "field name '" + field.Name + "' collides with a generated member");
        }
    }

    // ---- file and classes ---------------------------------------------------------------------------------

    private string EmitFile()
    {
        Line("// <auto-generated/>");
        Line("// Generated by Osprey.Protocol.Generator from " + System.IO.Path.GetFileName(_message.File) + ". Do not edit.");
        Line("#nullable enable");
        Line("using System;");
        Line("using System.Collections.Generic;");
        Line("using Osprey.Protocol.Primitives;");
        Line();
        Line("namespace Osprey.Protocol.Messages;");
        Line();
        var isApi = _message.ApiKey is not null;
        Line("public sealed partial class " + _message.Name + (isApi ? " : IApiMessage" : " : IVersionedMessage"));
        Open();
        Line("public const short LowestSupportedVersion = " + _universe.Min + ";");
        Line("public const short HighestSupportedVersion = " + _universe.Max + ";");
        Line("public const short FirstFlexibleVersion = " + (_message.FlexibleVersions.IsNone ? "-1" : _message.FlexibleVersions.Min.ToString(CultureInfo.InvariantCulture)) + ";");
        Line();
        if (isApi)
        {
            Line("global::Osprey.Protocol.ApiKey IApiMessage.ApiKey => (global::Osprey.Protocol.ApiKey)" + _message.ApiKey!.Value + ";");
            Line();
            Line("bool IApiMessage.IsRequest => " + (_message.Kind == "request" ? "true" : "false") + ";");
            Line();
        }

        Line("short IVersionedMessage.LowestSupportedVersion => LowestSupportedVersion;");
        Line();
        Line("short IVersionedMessage.HighestSupportedVersion => HighestSupportedVersion;");
        Line();
        EmitBody(_message.Name, _message.Fields, isTop: true);
        foreach (var model in _structOrder)
        {
            Line();
            Line("public sealed partial class " + model.ClassName + " : IKafkaStruct");
            Open();
            EmitBody(model.ClassName, model.Fields, isTop: false);
            Close();
        }

        Close();
        return _out.ToString();
    }

    private void EmitBody(string className, List<FieldDefinition> fields, bool isTop)
    {
        foreach (var field in fields)
        {
            Line("public " + PropertyType(field) + " " + Prop(field) + " { get; set; }" + Initializer(field));
            Line();
        }

        EmitRead(className, fields, isTop);
        Line();
        EmitWrite(className, fields, isTop);
        Line();
        EmitSize(fields, isTop);
        Line();
        Line("/// <summary>True when every field holds its default value.</summary>");
        var checks = fields.Select(IsDefaultExpression).ToList();
        Line("public bool IsDefault() => " + (checks.Count == 0 ? "true" : string.Join(" && ", checks)) + ";");
    }

    // ---- types and defaults -------------------------------------------------------------------------------

    private static string PrimitiveType(string kafkaType) => kafkaType switch
    {
        "bool" => "bool",
        "int8" => "sbyte",
        "int16" => "short",
        "uint16" => "ushort",
        "int32" => "int",
        "uint32" => "uint",
        "int64" => "long",
        "float64" => "double",
        "uuid" => "Guid",
        "string" => "string",
        "bytes" => "byte[]",
        "records" => "ReadOnlyMemory<byte>?",
        _ => throw new InvalidOperationException(kafkaType),
    };

    private string ElementClrType(FieldDefinition field) =>
        DefinitionParser.IsPrimitive(field.ElementType) ? PrimitiveType(field.ElementType) : _structs[field.ElementType].ClassName;

    private static bool IsNullable(FieldDefinition field) => !field.NullableVersions.IsNone;

    private string PropertyType(FieldDefinition field)
    {
        if (field.IsArray)
        {
            if (field.ElementType is "records" or "bytes")
            {
                throw Error(field.Line, "arrays of " + field.ElementType + " are not supported");
            }

            return "List<" + ElementClrType(field) + ">" + (IsNullable(field) ? "?" : "");
        }

        if (field.Type == "records")
        {
            return "ReadOnlyMemory<byte>?";
        }

        var type = ElementClrType(field);
        var referenceType = field.Type is "string" or "bytes" || !DefinitionParser.IsPrimitive(field.Type);
        if (IsNullable(field) && !referenceType)
        {
            throw Error(field.Line, "only strings, bytes, records, arrays and structs can be nullable");
        }

        return type + (IsNullable(field) && referenceType ? "?" : "");
    }

    private bool DefaultIsNull(FieldDefinition field)
    {
        if (field.Default == "null")
        {
            if (!IsNullable(field))
            {
                throw Error(field.Line, "default=null needs nullable versions");
            }

            return true;
        }

        return field.Type == "records";
    }

    private string DefaultLiteral(FieldDefinition field)
    {
        if (DefaultIsNull(field))
        {
            return "null";
        }

        if (field.IsArray)
        {
            return "new()";
        }

        var text = field.Default;
        switch (field.Type)
        {
            case "bool":
                return text is null or "false" ? "false" : text == "true" ? "true" : throw Error(field.Line, "bad bool default");
            case "string":
                return Quote(text ?? "");
            case "bytes":
                return "Array.Empty<byte>()";
            case "uuid":
                return text is null or "0" ? "Guid.Empty" : throw Error(field.Line, "uuid defaults other than zero are not supported");
            case "float64":
                return text is null ? "0d" : double.Parse(text, CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture) + "d";
            case "int8":
            case "int16":
            case "uint16":
            case "int32":
            case "uint32":
            case "int64":
                return IntegerLiteral(field, text);
            default:
                if (text is not null)
                {
                    throw Error(field.Line, "struct fields cannot have a default other than null");
                }

                return "new()";
        }
    }

    private string IntegerLiteral(FieldDefinition field, string? text)
    {
        long value = 0;
        if (text is not null)
        {
            var ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? long.TryParse(text.Substring(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
                : long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
            if (!ok)
            {
                throw Error(field.Line, "bad integer default '" + text + "'");
            }
        }

        var (min, max) = field.Type switch
        {
            "int8" => ((long)sbyte.MinValue, (long)sbyte.MaxValue),
            "int16" => (short.MinValue, short.MaxValue),
            "uint16" => (ushort.MinValue, ushort.MaxValue),
            "int32" => (int.MinValue, int.MaxValue),
            "uint32" => (uint.MinValue, uint.MaxValue),
            _ => (long.MinValue, long.MaxValue),
        };
        if (value < min || value > max)
        {
            throw Error(field.Line, "default " + text + " does not fit " + field.Type);
        }

        var digits = value.ToString(CultureInfo.InvariantCulture);
        return field.Type switch
        {
            "int64" => value == long.MinValue ? "long.MinValue" : digits + "L",
            "int32" => value == int.MinValue ? "int.MinValue" : digits,
            "uint32" => digits + "u",
            _ => "(" + PrimitiveType(field.Type) + ")" + (value < 0 ? "(" + digits + ")" : digits),
        };
    }

    private string Initializer(FieldDefinition field)
    {
        var literal = DefaultLiteral(field);
        return literal is "0" or "false" or "Guid.Empty" || (literal == "null" && field.Type == "records")
            ? ""
            : " = " + literal + ";";
    }

    private string IsDefaultExpression(FieldDefinition field)
    {
        var name = Prop(field);
        if (DefaultIsNull(field))
        {
            return name + " is null";
        }

        if (field.IsArray)
        {
            return "(" + name + " is not null && " + name + ".Count == 0)";
        }

        return field.Type switch
        {
            "string" => "(" + name + " is not null && " + name + " == " + Quote(field.Default ?? "") + ")",
            "bytes" => "(" + name + " is not null && " + name + ".Length == 0)",
            "bool" or "int8" or "int16" or "uint16" or "int32" or "uint32" or "int64" or "float64" or "uuid" =>
                name + " == " + DefaultLiteral(field),
            _ => "(" + name + " is not null && " + name + ".IsDefault())",
        };
    }

    private static string Quote(string text) =>
        "\"" + text.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    // ---- version conditions -------------------------------------------------------------------------------

    /// <summary>A C# condition on 'version' for the range, or null when it holds for every version.</summary>
    private string? Condition(VersionRange range)
    {
        var inside = range.Intersect(_universe);
        if (inside.IsNone)
        {
            return "NEVER";
        }

        var parts = new List<string>();
        if (inside.Min > _universe.Min)
        {
            parts.Add("version >= " + inside.Min);
        }

        if (inside.Max < _universe.Max)
        {
            parts.Add("version <= " + inside.Max);
        }

        return parts.Count == 0 ? null : string.Join(" && ", parts);
    }

    /// <summary>Versions in which the field sits in the fixed part of the struct (not tagged).</summary>
    private static VersionRange RegularVersions(FieldDefinition field)
    {
        if (field.Tag is null)
        {
            return field.Versions;
        }

        // Kafka requires a tagged field's taggedVersions to be its versions, or a suffix of them.
        var tagged = field.TaggedVersions.Intersect(field.Versions);
        if (tagged.IsNone || tagged.Equals(field.Versions))
        {
            return VersionRange.None;
        }

        if (tagged.Max == field.Versions.Max && tagged.Min > field.Versions.Min)
        {
            return new VersionRange(field.Versions.Min, (short)(tagged.Min - 1));
        }

        throw new DefinitionException("", field.Line, "tagged versions must be a suffix of the field's versions");
    }

    private static VersionRange TaggedVersions(FieldDefinition field) =>
        field.Tag is null ? VersionRange.None : field.TaggedVersions.Intersect(field.Versions);

    private string CompactExpression(FieldDefinition field)
    {
        if (field.FlexibleVersions is { } own)
        {
            var condition = Condition(own);
            return condition is null ? "true" : condition == "NEVER" ? "false" : "(" + condition + ")";
        }

        return "flexible";
    }

    /// <summary>A C# condition for "nullable in this version" ("true"/"false" when constant over the field's versions).</summary>
    private string NullableExpression(FieldDefinition field)
    {
        if (field.NullableVersions.IsNone)
        {
            return "false";
        }

        var present = field.Versions.Intersect(_universe);
        var nullable = field.NullableVersions.Intersect(present);
        if (nullable.IsNone)
        {
            return "false";
        }

        if (nullable.Equals(present))
        {
            return "true";
        }

        return "(" + Condition(nullable) + ")";
    }

    // ---- read ---------------------------------------------------------------------------------------------

    private void EmitRead(string className, List<FieldDefinition> fields, bool isTop)
    {
        _temp = 0;
        Line("/// <summary>Reads this struct at the given version into a fresh instance.</summary>");
        Line("public void Read(ref KafkaReader reader, short version)");
        Open();
        if (isTop)
        {
            EmitVersionCheck();
        }

        EmitFlexibleLocal();
        foreach (var field in fields)
        {
            var condition = Condition(RegularVersions(field));
            if (condition == "NEVER")
            {
                continue;
            }

            Guarded(condition, () => EmitReadValue(field, Prop(field), "reader", CompactExpression(field)));
        }

        var tagged = fields.Where(f => f.Tag is not null && !TaggedVersions(f).IsNone).OrderBy(f => f.Tag).ToList();
        if (!_message.FlexibleVersions.Intersect(_universe).IsNone)
        {
            Line("if (flexible)");
            Open();
            Line("var taggedCount = reader.ReadTaggedFieldCount();");
            Line("for (var i = 0; i < taggedCount; i++)");
            Open();
            Line("var tag = reader.ReadUnsignedVarInt();");
            Line("var tagReader = reader.ReadTaggedFieldValue(out _);");
            if (tagged.Count > 0)
            {
                Line("switch (tag)");
                Open();
                foreach (var field in tagged)
                {
                    var condition = Condition(TaggedVersions(field));
                    Line("case " + field.Tag + "u" + (condition is null ? "" : " when " + condition) + ":");
                    Open();
                    EmitReadValue(field, Prop(field), "tagReader", "true");
                    Line("tagReader.EnsureConsumed(\"" + className + "." + field.Name + "\");");
                    Line("break;");
                    Close();
                }

                Line("default:");
                Line("    break; // unknown tagged fields are skipped");
                Close();
            }
            else
            {
                Line("_ = tag; // unknown tagged fields are skipped");
                Line("_ = tagReader;");
            }

            Close();
            Close();
        }

        Close();
    }

    private void EmitVersionCheck()
    {
        Line("if (version < LowestSupportedVersion || version > HighestSupportedVersion)");
        Open();
        Line("throw new global::Osprey.Protocol.KafkaProtocolException(global::Osprey.Protocol.ErrorCode.UnsupportedVersion, $\"" + _message.Name + " version {version} is not supported; versions \" + LowestSupportedVersion + \" to \" + HighestSupportedVersion + \" are.\");");
        Close();
        Line();
    }

    private void EmitFlexibleLocal()
    {
        var flex = _message.FlexibleVersions.Intersect(_universe);
        var condition = Condition(flex);
        Line("var flexible = " + (condition == "NEVER" ? "version < 0" : condition is null ? "version >= 0" : condition) + ";");
    }

    private static int MinElementSize(string type) => type switch
    {
        "bool" or "int8" => 1,
        "int16" or "uint16" => 2,
        "int32" or "uint32" => 4,
        "int64" or "float64" => 8,
        "uuid" => 16,
        _ => 1,
    };

    private static string ReadPrimitive(string type, string reader, string compact, bool nullable) => type switch
    {
        "bool" => reader + ".ReadBool()",
        "int8" => reader + ".ReadInt8()",
        "int16" => reader + ".ReadInt16()",
        "uint16" => reader + ".ReadUInt16()",
        "int32" => reader + ".ReadInt32()",
        "uint32" => reader + ".ReadUInt32()",
        "int64" => reader + ".ReadInt64()",
        "float64" => reader + ".ReadFloat64()",
        "uuid" => reader + ".ReadUuid()",
        "string" => reader + (nullable ? ".ReadNullableString(" : ".ReadString(") + compact + ")",
        "bytes" => reader + (nullable ? ".ReadNullableBytes(" : ".ReadBytes(") + compact + ")",
        "records" => reader + ".ReadRecords(" + compact + ")",
        _ => throw new InvalidOperationException(type),
    };

    private void EmitReadValue(FieldDefinition field, string target, string reader, string compact)
    {
        var nullable = NullableExpression(field);
        if (field.IsArray)
        {
            var count = Temp("count");
            Line("var " + count + " = " + reader + ".ReadArrayLength(" + compact + ", " + MinElementSize(field.ElementType) + ");");
            Line("if (" + count + " < 0)");
            Open();
            if (nullable == "false")
            {
                Line(ThrowNull(field));
            }
            else
            {
                if (nullable != "true")
                {
                    Line("if (!" + nullable + ") " + ThrowNull(field));
                }

                Line(target + " = null;");
            }

            Close();
            Line("else");
            Open();
            var list = Temp("list");
            Line("var " + list + " = new List<" + ElementClrType(field) + ">(" + count + ");");
            var index = Temp("i");
            Line("for (var " + index + " = 0; " + index + " < " + count + "; " + index + "++)");
            Open();
            if (DefinitionParser.IsPrimitive(field.ElementType))
            {
                Line(list + ".Add(" + ReadPrimitive(field.ElementType, reader, compact, nullable: false) + ");");
            }
            else
            {
                var item = Temp("item");
                Line("var " + item + " = new " + ElementClrType(field) + "();");
                Line(item + ".Read(ref " + reader + ", version);");
                Line(list + ".Add(" + item + ");");
            }

            Close();
            Line(target + " = " + list + ";");
            Close();
            return;
        }

        if (!DefinitionParser.IsPrimitive(field.Type))
        {
            var type = ElementClrType(field);
            if (nullable != "false")
            {
                Line("if (" + (nullable == "true" ? "" : nullable + " && ") + "!" + reader + ".ReadStructPresent())");
                Open();
                Line(target + " = null;");
                Close();
                Line("else");
                Open();
            }

            var value = Temp("value");
            Line("var " + value + " = new " + type + "();");
            Line(value + ".Read(ref " + reader + ", version);");
            Line(target + " = " + value + ";");
            if (nullable != "false")
            {
                Close();
            }

            return;
        }

        switch (field.Type)
        {
            case "string":
            case "bytes":
                if (nullable is "true" or "false")
                {
                    Line(target + " = " + ReadPrimitive(field.Type, reader, compact, nullable == "true") + ";");
                }
                else
                {
                    Line(target + " = " + nullable + " ? " + ReadPrimitive(field.Type, reader, compact, true) + " : " + ReadPrimitive(field.Type, reader, compact, false) + ";");
                }

                break;
            case "records":
                Line(target + " = " + ReadPrimitive(field.Type, reader, compact, true) + ";");
                if (nullable != "true")
                {
                    Line("if (" + target + " is null" + (nullable == "false" ? "" : " && !" + nullable) + ") " + ThrowNull(field));
                }

                break;
            default:
                Line(target + " = " + ReadPrimitive(field.Type, reader, compact, false) + ";");
                break;
        }
    }

    private string ThrowNull(FieldDefinition field) =>
        "throw new global::Osprey.Protocol.KafkaProtocolException(global::Osprey.Protocol.ErrorCode.InvalidRequest, $\"" + _message.Name + "." + field.Name + " is null, which version {version} does not allow.\");";

    // ---- write --------------------------------------------------------------------------------------------

    private void EmitWrite(string className, List<FieldDefinition> fields, bool isTop)
    {
        _temp = 0;
        Line("/// <summary>Writes this struct at the given version; the destination was sized by <see cref=\"Size\"/>.</summary>");
        Line("public void Write(ref KafkaWriter writer, short version)");
        Open();
        if (isTop)
        {
            EmitVersionCheck();
        }

        EmitFlexibleLocal();
        foreach (var field in fields)
        {
            var regular = Condition(RegularVersions(field));
            var anywhere = Condition(field.Versions);
            if (regular != "NEVER")
            {
                if (regular is null)
                {
                    EmitWriteValue(field, Prop(field), "writer", CompactExpression(field));
                }
                else
                {
                    Line("if (" + regular + ")");
                    Open();
                    EmitWriteValue(field, Prop(field), "writer", CompactExpression(field));
                    Close();
                }
            }

            // Outside its versions a field must hold its default, unless it is ignorable.
            if (!field.Ignorable && anywhere is not null)
            {
                var absent = anywhere == "NEVER" ? null : "!(" + anywhere + ")";
                Line("if (" + (absent is null ? "" : absent + " && ") + "!(" + IsDefaultExpression(field) + "))");
                Open();
                Line("throw new global::Osprey.Protocol.KafkaProtocolException(global::Osprey.Protocol.ErrorCode.UnsupportedVersion, $\"" + className + "." + field.Name + " cannot be written at version {version}.\");");
                Close();
            }
        }

        var tagged = fields.Where(f => f.Tag is not null && !TaggedVersions(f).IsNone).OrderBy(f => f.Tag).ToList();
        if (!_message.FlexibleVersions.Intersect(_universe).IsNone)
        {
            Line("if (flexible)");
            Open();
            if (tagged.Count == 0)
            {
                Line("writer.WriteUnsignedVarInt(0);");
            }
            else
            {
                Line("var taggedCount = 0u;");
                foreach (var field in tagged)
                {
                    Line("if (" + TaggedPresent(field) + ") taggedCount++;");
                }

                Line("writer.WriteUnsignedVarInt(taggedCount);");
                foreach (var field in tagged)
                {
                    Line("if (" + TaggedPresent(field) + ")");
                    Open();
                    Line("writer.WriteUnsignedVarInt(" + field.Tag + ");");
                    var size = Temp("size");
                    Line("var " + size + " = 0;");
                    EmitSizeValue(field, Prop(field), size, "true");
                    Line("writer.WriteUnsignedVarInt((uint)" + size + ");");
                    EmitWriteValue(field, Prop(field), "writer", "true");
                    Close();
                }
            }

            Close();
        }

        Close();
    }

    private string TaggedPresent(FieldDefinition field)
    {
        var condition = Condition(TaggedVersions(field));
        return (condition is null ? "" : condition + " && ") + "!(" + IsDefaultExpression(field) + ")";
    }

    private static string WritePrimitive(string type, string writer, string value, string compact) => type switch
    {
        "bool" => writer + ".WriteBool(" + value + ")",
        "int8" => writer + ".WriteInt8(" + value + ")",
        "int16" => writer + ".WriteInt16(" + value + ")",
        "uint16" => writer + ".WriteUInt16(" + value + ")",
        "int32" => writer + ".WriteInt32(" + value + ")",
        "uint32" => writer + ".WriteUInt32(" + value + ")",
        "int64" => writer + ".WriteInt64(" + value + ")",
        "float64" => writer + ".WriteFloat64(" + value + ")",
        "uuid" => writer + ".WriteUuid(" + value + ")",
        "string" => writer + ".WriteString(" + value + ", " + compact + ")",
        "bytes" => writer + ".WriteNullableBytes(" + value + ", " + compact + ")",
        "records" => writer + ".WriteRecords(" + value + ", " + compact + ")",
        _ => throw new InvalidOperationException(type),
    };

    private void EmitNullCheckForWrite(FieldDefinition field, string value, string nullable)
    {
        if (nullable == "true")
        {
            return;
        }

        var isNull = field.Type == "records" ? "!" + value + ".HasValue" : value + " is null";
        Line("if (" + isNull + (nullable == "false" ? "" : " && !" + nullable) + ") " + ThrowNull(field));
    }

    private void EmitWriteValue(FieldDefinition field, string value, string writer, string compact)
    {
        var nullable = NullableExpression(field);
        var referenceLike = field.IsArray || !DefinitionParser.IsPrimitive(field.Type) || field.Type is "string" or "bytes" or "records";
        if (referenceLike)
        {
            EmitNullCheckForWrite(field, value, nullable);
        }

        if (field.IsArray)
        {
            Line("if (" + value + " is null)");
            Open();
            Line(writer + ".WriteArrayLength(-1, " + compact + ");");
            Close();
            Line("else");
            Open();
            Line(writer + ".WriteArrayLength(" + value + ".Count, " + compact + ");");
            var item = Temp("item");
            Line("foreach (var " + item + " in " + value + ")");
            Open();
            if (DefinitionParser.IsPrimitive(field.ElementType))
            {
                Line(WritePrimitive(field.ElementType, writer, item, compact) + ";");
            }
            else
            {
                Line(item + ".Write(ref " + writer + ", version);");
            }

            Close();
            Close();
            return;
        }

        if (!DefinitionParser.IsPrimitive(field.Type))
        {
            if (nullable != "false")
            {
                if (nullable == "true")
                {
                    Line(writer + ".WriteStructPresent(" + value + " is not null);");
                }
                else
                {
                    Line("if (" + nullable + ") " + writer + ".WriteStructPresent(" + value + " is not null);");
                }
            }

            Line(value + "?.Write(ref " + writer + ", version);");
            return;
        }

        Line(WritePrimitive(field.Type, writer, value, compact) + ";");
    }

    // ---- size ---------------------------------------------------------------------------------------------

    private void EmitSize(List<FieldDefinition> fields, bool isTop)
    {
        _temp = 0;
        Line("/// <summary>The exact number of bytes <see cref=\"Write\"/> produces at the given version.</summary>");
        Line("public int Size(short version)");
        Open();
        if (isTop)
        {
            EmitVersionCheck();
        }

        EmitFlexibleLocal();
        Line("var size = 0;");
        foreach (var field in fields)
        {
            var condition = Condition(RegularVersions(field));
            if (condition == "NEVER")
            {
                continue;
            }

            Guarded(condition, () => EmitSizeValue(field, Prop(field), "size", CompactExpression(field)));
        }

        var tagged = fields.Where(f => f.Tag is not null && !TaggedVersions(f).IsNone).OrderBy(f => f.Tag).ToList();
        if (!_message.FlexibleVersions.Intersect(_universe).IsNone)
        {
            Line("if (flexible)");
            Open();
            if (tagged.Count == 0)
            {
                Line("size += 1;");
            }
            else
            {
                Line("var taggedCount = 0u;");
                foreach (var field in tagged)
                {
                    Line("if (" + TaggedPresent(field) + ")");
                    Open();
                    Line("taggedCount++;");
                    var fieldSize = Temp("size");
                    Line("var " + fieldSize + " = 0;");
                    EmitSizeValue(field, Prop(field), fieldSize, "true");
                    Line("size += KafkaSize.UnsignedVarInt(" + field.Tag + ") + KafkaSize.UnsignedVarInt((uint)" + fieldSize + ") + " + fieldSize + ";");
                    Close();
                }

                Line("size += KafkaSize.UnsignedVarInt(taggedCount);");
            }

            Close();
        }

        Line("return size;");
        Close();
    }

    private static int FixedSize(string type) => type switch
    {
        "bool" or "int8" => 1,
        "int16" or "uint16" => 2,
        "int32" or "uint32" => 4,
        "int64" or "float64" => 8,
        "uuid" => 16,
        _ => -1,
    };

    private void EmitSizeValue(FieldDefinition field, string value, string total, string compact)
    {
        if (field.IsArray)
        {
            Line(total + " += KafkaSize.ArrayLength(" + value + "?.Count ?? -1, " + compact + ");");
            var fixedSize = FixedSize(field.ElementType);
            if (fixedSize > 0)
            {
                Line("if (" + value + " is not null) " + total + " += " + value + ".Count * " + fixedSize + ";");
                return;
            }

            Line("if (" + value + " is not null)");
            Open();
            var item = Temp("item");
            Line("foreach (var " + item + " in " + value + ")");
            Open();
            Line(total + " += " + (field.ElementType == "string" ? "KafkaSize.String(" + item + ", " + compact + ")" : item + ".Size(version)") + ";");
            Close();
            Close();
            return;
        }

        if (!DefinitionParser.IsPrimitive(field.Type))
        {
            var nullable = NullableExpression(field);
            if (nullable == "true")
            {
                Line(total + " += 1;");
            }
            else if (nullable != "false")
            {
                Line("if (" + nullable + ") " + total + " += 1;");
            }

            Line("if (" + value + " is not null) " + total + " += " + value + ".Size(version);");
            return;
        }

        var size = field.Type switch
        {
            "string" => "KafkaSize.String(" + value + ", " + compact + ")",
            "bytes" => "KafkaSize.NullableBytes(" + value + ", " + compact + ")",
            "records" => "KafkaSize.Records(" + value + ", " + compact + ")",
            _ => FixedSize(field.Type).ToString(CultureInfo.InvariantCulture),
        };
        Line(total + " += " + size + ";");
    }

    // ---- text helpers -------------------------------------------------------------------------------------

    private void Guarded(string? condition, Action body)
    {
        if (condition is null)
        {
            body();
            return;
        }

        Line("if (" + condition + ")");
        Open();
        body();
        Close();
    }

    private string Temp(string name) => name + (++_temp).ToString(CultureInfo.InvariantCulture);

    private void Open()
    {
        Line("{");
        _indent++;
    }

    private void Close()
    {
        _indent--;
        Line("}");
    }

    private void Line(string text = "")
    {
        if (text.Length > 0)
        {
            _out.Append(' ', _indent * 4);
        }

        _out.Append(text).Append('\n');
    }
}
