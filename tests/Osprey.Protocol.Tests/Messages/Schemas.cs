using System.Reflection;
using Osprey.Protocol.Generator;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>The definitions, read with the generator's own parser, and the generated type of each message.</summary>
internal static class Schemas
{
    private static readonly Lazy<IReadOnlyList<MessageDefinition>> AllMessages = new(Load);

    public static IReadOnlyList<MessageDefinition> All => AllMessages.Value;

    public static MessageDefinition Get(string name) => All.Single(m => m.Name == name);

    public static Type ClrType(MessageDefinition message) =>
        typeof(MessageCodec).Assembly.GetType("Osprey.Protocol.Messages." + message.Name, throwOnError: true)!;

    public static IKafkaStruct Create(MessageDefinition message) => (IKafkaStruct)Activator.CreateInstance(ClrType(message))!;

    /// <summary>Every (message, version) pair the definitions declare.</summary>
    public static TheoryData<string, short> MessageVersions()
    {
        var data = new TheoryData<string, short>();
        foreach (var message in All)
        {
            for (var v = message.Versions.Min; v <= message.Versions.Max; v++)
            {
                data.Add(message.Name, v);
            }
        }

        return data;
    }

    /// <summary>The fields of a struct type referenced by a field: inline children or a common struct.</summary>
    public static List<FieldDefinition> StructFields(MessageDefinition message, FieldDefinition field) =>
        field.Fields.Count > 0 ? field.Fields : message.CommonStructs.Single(s => s.Name == field.ElementType).Fields;

    public static PropertyInfo Property(Type type, FieldDefinition field) =>
        type.GetProperty(field.PropertyName, BindingFlags.Public | BindingFlags.Instance)
        ?? throw new InvalidOperationException($"{type.Name} has no property {field.Name}");

    /// <summary>The element type of List&lt;T&gt;, or the type itself.</summary>
    public static Type ElementType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0] :
        Nullable.GetUnderlyingType(type) ?? type;

    private static IReadOnlyList<MessageDefinition> Load()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "definitions");
        return Directory.GetFiles(dir, "*.def")
            .OrderBy(f => f, StringComparer.Ordinal)
            .SelectMany(f => DefinitionParser.Parse(f, File.ReadAllText(f)))
            .ToList();
    }
}
