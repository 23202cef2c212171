using System.Collections;
using System.Text;
using CsCheck;
using Osprey.Protocol.Generator;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>
/// CsCheck generators for any message at any version, built from the definitions: fields present at the
/// version get random values (null where the version allows it); absent fields keep their defaults.
/// </summary>
internal static class MessageGen
{
    private static readonly Gen<char> Chars = Gen.Frequency(
        (8, Gen.Char['a', 'z']),
        (2, Gen.Char['0', '9']),
        (1, Gen.Int[0, 6].Select(i => "éß漢-_. "[i])));

    private static readonly Gen<string> Strings = Gen.String[Chars, 0, 12];

    public static Gen<IKafkaStruct> For(MessageDefinition message, short version) =>
        Struct(message, Schemas.ClrType(message), message.Fields, version).Select(o => (IKafkaStruct)o);

    private static Gen<object> Struct(MessageDefinition message, Type type, List<FieldDefinition> fields, short version)
    {
        var present = fields.Where(f => f.Versions.Contains(version)).ToList();
        var values = Gen.Const(Array.Empty<object?>());
        foreach (var field in present)
        {
            var fieldGen = Field(message, type, field, version);
            values = Gen.Select(values, fieldGen, (array, value) => array.Append(value).ToArray());
        }

        return values.Select(array =>
        {
            var instance = Activator.CreateInstance(type)!;
            for (var i = 0; i < present.Count; i++)
            {
                Schemas.Property(type, present[i]).SetValue(instance, array[i]);
            }

            return instance;
        });
    }

    private static Gen<object?> Field(MessageDefinition message, Type owner, FieldDefinition field, short version)
    {
        var property = Schemas.Property(owner, field);
        Gen<object?> value;
        if (field.IsArray)
        {
            var elementType = Schemas.ElementType(property.PropertyType);
            var element = Element(message, field, elementType, version);
            value = element.Array[0, 3].Select(items =>
            {
                var list = (IList)Activator.CreateInstance(property.PropertyType.IsGenericType ? property.PropertyType : typeof(List<>).MakeGenericType(elementType))!;
                foreach (var item in items)
                {
                    list.Add(item);
                }

                return (object?)list;
            });
        }
        else
        {
            value = Element(message, field, Schemas.ElementType(property.PropertyType), version).Select(v => (object?)v);
        }

        return field.NullableVersions.Contains(version)
            ? Gen.Frequency((1, Gen.Const(() => (object?)null)), (4, value))
            : value;
    }

    private static Gen<object> Element(MessageDefinition message, FieldDefinition field, Type clrType, short version) =>
        field.ElementType switch
        {
            "bool" => Gen.Bool.Select(v => (object)v),
            "int8" => Gen.SByte.Select(v => (object)v),
            "int16" => Gen.Short.Select(v => (object)v),
            "uint16" => Gen.UShort.Select(v => (object)v),
            "int32" => Gen.Int.Select(v => (object)v),
            "uint32" => Gen.UInt.Select(v => (object)v),
            "int64" => Gen.Long.Select(v => (object)v),
            "float64" => Gen.Double.Select(v => (object)v),
            "uuid" => Gen.Guid.Select(v => (object)v),
            "string" => Strings.Select(v => (object)v),
            "bytes" => Gen.Byte.Array[0, 16].Select(v => (object)v),
            "records" => Gen.Byte.Array[0, 32].Select(v => (object)new ReadOnlyMemory<byte>(v)),
            _ => Struct(message, clrType, Schemas.StructFields(message, field), version),
        };

    /// <summary>Compares the fields present at the version, recursively; returns the first difference or null.</summary>
    public static string? Difference(MessageDefinition message, List<FieldDefinition> fields, object expected, object actual, short version, string path)
    {
        foreach (var field in fields.Where(f => f.Versions.Contains(version)))
        {
            var property = Schemas.Property(expected.GetType(), field);
            var a = property.GetValue(expected);
            var b = property.GetValue(actual);
            var here = path + "." + field.Name;
            var difference = ValueDifference(message, field, a, b, version, here);
            if (difference is not null)
            {
                return difference;
            }
        }

        return null;
    }

    private static string? ValueDifference(MessageDefinition message, FieldDefinition field, object? a, object? b, short version, string path)
    {
        if (a is null || b is null)
        {
            return a is null && b is null ? null : $"{path}: {Show(a)} != {Show(b)}";
        }

        if (field.IsArray)
        {
            var left = (IList)a;
            var right = (IList)b;
            if (left.Count != right.Count)
            {
                return $"{path}: {left.Count} elements != {right.Count}";
            }

            for (var i = 0; i < left.Count; i++)
            {
                var difference = DataProtocolPrimitive(field.ElementType)
                    ? (Equals(left[i], right[i]) ? null : $"{path}[{i}]: {Show(left[i])} != {Show(right[i])}")
                    : Difference(message, Schemas.StructFields(message, field), left[i]!, right[i]!, version, $"{path}[{i}]");
                if (difference is not null)
                {
                    return difference;
                }
            }

            return null;
        }

        return field.Type switch
        {
            "bytes" => ((byte[])a).AsSpan().SequenceEqual((byte[])b) ? null : $"{path}: bytes differ",
            "records" => ((ReadOnlyMemory<byte>)a).Span.SequenceEqual(((ReadOnlyMemory<byte>)b).Span) ? null : $"{path}: records differ",
            _ when DataProtocolPrimitive(field.Type) => Equals(a, b) ? null : $"{path}: {Show(a)} != {Show(b)}",
            _ => Difference(message, Schemas.StructFields(message, field), a, b, version, path),
        };
    }

    private static bool DataProtocolPrimitive(string type) => DefinitionParser.IsPrimitive(type);

    private static string Show(object? value) => value switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        byte[] bytes => Convert.ToHexString(bytes),
        _ => value.ToString() ?? "",
    };

    public static string Hex(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder();
        foreach (var b in bytes)
        {
            sb.Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }
}
