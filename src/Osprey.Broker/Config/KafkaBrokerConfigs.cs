using System.Collections.Frozen;

namespace Osprey.Broker.Config;

/// <summary>One of Apache Kafka's broker settings as Kafka's DescribeConfigs reports it.</summary>
/// <param name="Name">The setting's name.</param>
/// <param name="Type">Kafka's type name (boolean, int, short, long, double, string, list, class, password).</param>
/// <param name="Default">Kafka's default, or null when it has none.</param>
/// <param name="Dynamic">Whether Kafka lets it change while the broker runs (DescribeConfigs' read-only flag is the opposite).</param>
public sealed record KafkaBrokerConfig(string Name, string Type, string? Default, bool Dynamic)
{
    /// <summary>Passwords are reported without their value, as sensitive.</summary>
    public bool Sensitive => Type == "password";

    /// <summary>DescribeConfigs' type id (class and password report as Kafka reports them: 8 and 9).</summary>
    public sbyte TypeId => Type switch
    {
        "boolean" => (sbyte)ConfigType.Boolean,
        "string" => (sbyte)ConfigType.String,
        "int" => (sbyte)ConfigType.Int,
        "short" => (sbyte)ConfigType.Short,
        "long" => (sbyte)ConfigType.Long,
        "double" => (sbyte)ConfigType.Double,
        "list" => (sbyte)ConfigType.List,
        "class" => 8,
        "password" => 9,
        _ => (sbyte)ConfigType.Unknown,
    };
}

/// <summary>
/// Every broker setting Apache Kafka 4.0 has (KafkaBrokerConfigs.tsv, embedded): a Kafka user's properties file may
/// name any of them, and DescribeConfigs on a broker reports all of them with Kafka's defaults, also the ones Osprey
/// has no use for (tools and tests look for num.network.threads and the like).
/// </summary>
public static class KafkaBrokerConfigs
{
    public static FrozenDictionary<string, KafkaBrokerConfig> All { get; } = Load();

    public static KafkaBrokerConfig? Find(string name) => All.GetValueOrDefault(name);

    private static FrozenDictionary<string, KafkaBrokerConfig> Load()
    {
        using var stream = typeof(KafkaBrokerConfigs).Assembly.GetManifestResourceStream("Osprey.Broker.Config.KafkaBrokerConfigs.tsv")
            ?? throw new InvalidOperationException("KafkaBrokerConfigs.tsv is not embedded in Osprey.Broker.");
        using var reader = new StreamReader(stream);
        var all = new Dictionary<string, KafkaBrokerConfig>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var fields = line.Split('\t');
            all[fields[0]] = new KafkaBrokerConfig(fields[0], fields[1], fields[2].Length == 0 ? null : fields[2], fields[3] == "dynamic");
        }

        return all.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
