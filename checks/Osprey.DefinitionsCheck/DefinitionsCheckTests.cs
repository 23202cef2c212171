using System.Text.Json;
using Osprey.Protocol.Generator;

namespace Osprey.DefinitionsCheck;

/// <summary>
/// Every API Osprey defines must match Kafka's own definition: name, type, versions, nullable versions, tags,
/// defaults, ignorable, map keys, flexible overrides and nesting — for every field at every listed version.
/// </summary>
public class DefinitionsCheckTests
{
    /// <summary>Deliberate differences, each with its reason.</summary>
    private static readonly Dictionary<string, string> Widened = new()
    {
        // Kafka lists 1-2 since ControlledShutdown v0 went away; Osprey still reads header v0 (no client id).
        ["RequestHeader.versions"] = "0-2",
    };

    public static TheoryData<string> KafkaMessages()
    {
        var data = new TheoryData<string>();
        foreach (var name in Sources.ExpectedMessageNames())
        {
            data.Add(name);
        }

        return data;
    }

    [Fact]
    public void EveryBrokerApiOfTheTableIsDefined()
    {
        var table = Sources.BrokerApis();
        var ours = Sources.Ours().Where(m => m.Kind == "request").ToDictionary(m => m.ApiKey!.Value, m => m);
        var missing = table.Where(t => !ours.ContainsKey(t.Key)).Select(t => $"{t.Key} {t.Name}").ToList();
        Assert.True(missing.Count == 0, "Missing APIs: " + string.Join(", ", missing));
        Assert.True(table.Count >= 65, $"the table lists only {table.Count} broker APIs");
        foreach (var (key, name, versions) in table)
        {
            Assert.Equal(name + "Request", ours[key].Name);
            Assert.Equal(versions, ours[key].Versions.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(KafkaMessages))]
    public void DefinitionMatchesKafka(string name)
    {
        var kafka = Sources.Kafka(name);
        var ours = Sources.Ours().SingleOrDefault(m => m.Name == name);
        Assert.True(ours is not null, $"{name} is not defined in definitions/");
        var problems = new List<string>();
        Compare(kafka, ours!, problems);
        Assert.True(problems.Count == 0, name + ":\n  " + string.Join("\n  ", problems));
    }

    private static void Compare(JsonElement kafka, MessageDefinition ours, List<string> problems)
    {
        void Check(string what, string? expected, string? actual)
        {
            if (Widened.TryGetValue(ours.Name + "." + what, out var widened))
            {
                expected = widened;
            }

            if (!string.Equals(expected, actual, StringComparison.Ordinal))
            {
                problems.Add($"{what}: Kafka says {expected ?? "(none)"}, ours {actual ?? "(none)"}");
            }
        }

        Check("type", Str(kafka, "type"), ours.Kind);
        Check("apiKey", kafka.TryGetProperty("apiKey", out var key) ? key.GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture) : null, ours.ApiKey?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Check("versions", Range(Str(kafka, "validVersions")), ours.Versions.ToString());
        Check("flexibleVersions", Range(Str(kafka, "flexibleVersions") ?? "none"), ours.FlexibleVersions.ToString());
        Check("latestVersionUnstable", Bool(kafka, "latestVersionUnstable").ToString(), ours.LatestVersionUnstable.ToString());
        var listeners = kafka.TryGetProperty("listeners", out var l) ? string.Join(",", l.EnumerateArray().Select(e => e.GetString())) : "";
        Check("listeners", listeners, string.Join(",", ours.Listeners));
        CompareFields(kafka, ours.Fields, ours.Name, problems);

        var kafkaStructs = kafka.TryGetProperty("commonStructs", out var cs) ? cs.EnumerateArray().ToList() : [];
        Check("commonStructs", string.Join(",", kafkaStructs.Select(s => Str(s, "name"))), string.Join(",", ours.CommonStructs.Select(s => s.Name)));
        foreach (var (kafkaStruct, ourStruct) in kafkaStructs.Zip(ours.CommonStructs))
        {
            Check("struct " + ourStruct.Name + " versions", Range(Str(kafkaStruct, "versions") ?? "0+"), ourStruct.Versions.ToString());
            CompareFields(kafkaStruct, ourStruct.Fields, ourStruct.Name, problems);
        }
    }

    private static void CompareFields(JsonElement kafkaParent, List<FieldDefinition> ours, string path, List<string> problems)
    {
        var kafka = kafkaParent.TryGetProperty("fields", out var f) ? f.EnumerateArray().ToList() : [];
        var kafkaNames = string.Join(",", kafka.Select(k => Str(k, "name")));
        var ourNames = string.Join(",", ours.Select(o => o.Name));
        if (kafkaNames != ourNames)
        {
            problems.Add($"{path} fields: Kafka has [{kafkaNames}], ours [{ourNames}]");
            return;
        }

        foreach (var (k, o) in kafka.Zip(ours))
        {
            var here = path + "." + o.Name;
            void Check(string what, string? expected, string? actual)
            {
                if (!string.Equals(expected, actual, StringComparison.Ordinal))
                {
                    problems.Add($"{here} {what}: Kafka says {expected ?? "(none)"}, ours {actual ?? "(none)"}");
                }
            }

            Check("type", Str(k, "type")?.Trim(), o.Type);
            Check("versions", Range(Str(k, "versions")), o.Versions.ToString());
            Check("nullableVersions", Range(Str(k, "nullableVersions") ?? "none"), o.NullableVersions.ToString());
            Check("tag", k.TryGetProperty("tag", out var tag) ? tag.GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture) : null, o.Tag?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Check("taggedVersions", Range(Str(k, "taggedVersions") ?? "none"), o.TaggedVersions.ToString());
            Check("default", Default(k), o.Default);
            Check("ignorable", Bool(k, "ignorable").ToString(), o.Ignorable.ToString());
            Check("mapKey", Bool(k, "mapKey").ToString(), o.MapKey.ToString());
            Check("flexibleVersions", Str(k, "flexibleVersions") is { } flex ? Range(flex) : null, o.FlexibleVersions?.ToString());
            Check("entityType", Str(k, "entityType"), o.Entity);
            Check("zeroCopy", Bool(k, "zeroCopy").ToString(), o.ZeroCopy.ToString());
            CompareFields(k, o.Fields, here, problems);
        }
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText() : null;

    private static bool Bool(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    private static string? Default(JsonElement e)
    {
        if (!e.TryGetProperty("default", out var v))
        {
            return null;
        }

        return v.ValueKind switch
        {
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.String => v.GetString(),
            _ => v.GetRawText(),
        };
    }

    /// <summary>Normalizes a Kafka version string through the same parser ours go through.</summary>
    private static string? Range(string? text) => text is null ? null : VersionRange.Parse(text).ToString();
}

internal static class Sources
{
    private static readonly Lazy<string> Root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Osprey.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Osprey.slnx)");
    });

    private static readonly Lazy<List<MessageDefinition>> OurMessages = new(() =>
        Directory.GetFiles(Path.Combine(Root.Value, "definitions"), "*.def")
            .SelectMany(f => DefinitionParser.Parse(f, File.ReadAllText(f)))
            .ToList());

    public static string Protocol =>
        Environment.GetEnvironmentVariable("OSPREY_KAFKA_PROTOCOL") is { Length: > 0 } dir
            ? dir
            : Path.GetFullPath(Path.Combine(Root.Value, "..", "shared", "kafka-protocol"));

    public static string MessagesDir => Path.Combine(Protocol, "messages-trunk-2026-08");

    public static List<MessageDefinition> Ours() => OurMessages.Value;

    /// <summary>(key, name, versions) of every API whose listeners include the broker.</summary>
    public static List<(short Key, string Name, string Versions)> BrokerApis() =>
        File.ReadAllLines(Path.Combine(Protocol, "api-table-trunk-2026-08.txt"))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(cols => cols.Length >= 5 && cols[4].Split(',').Contains("broker"))
            .Select(cols => (short.Parse(cols[0], System.Globalization.CultureInfo.InvariantCulture), cols[1], VersionRange.Parse(cols[2]["valid=".Length..]).ToString()))
            .ToList();

    /// <summary>Requests and responses of every broker API, the headers, and every data schema.</summary>
    public static IEnumerable<string> ExpectedMessageNames()
    {
        foreach (var (_, name, _) in BrokerApis())
        {
            yield return name + "Request";
            yield return name + "Response";
        }

        yield return "RequestHeader";
        yield return "ResponseHeader";
        foreach (var file in Directory.GetFiles(MessagesDir, "*.json").Order(StringComparer.Ordinal))
        {
            if (Str(Load(file), "type") == "data")
            {
                yield return Path.GetFileNameWithoutExtension(file);
            }
        }
    }

    public static JsonElement Kafka(string name) => Load(Path.Combine(MessagesDir, name + ".json"));

    private static JsonElement Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions
        {
            CommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
        });
        return doc.RootElement.Clone();
    }

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetString() : null;
}
