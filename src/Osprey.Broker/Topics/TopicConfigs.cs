using System.Globalization;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>Kafka's config types as DescribeConfigs v3+ reports them.</summary>
public enum ConfigType : sbyte
{
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// <summary>A topic config: its type, Kafka's default, and the broker property that supplies the default.</summary>
public sealed record TopicConfigDefinition(string Name, ConfigType Type, string Default, string ServerDefaultProperty);

/// <summary>
/// The topic configs Osprey honours (Kafka's names and defaults, ../shared/kafka-configs/topic.tsv), their
/// validation, and how they become a <see cref="LogConfig"/>.
/// </summary>
public static class TopicConfigs
{
    /// <summary>Names, types, defaults and server default properties, as in Kafka 4.0's topic.tsv.</summary>
    public static IReadOnlyList<TopicConfigDefinition> Definitions { get; } =
    [
        new("cleanup.policy", ConfigType.List, "delete", "log.cleanup.policy"),
        new("delete.retention.ms", ConfigType.Long, "86400000", "log.cleaner.delete.retention.ms"),
        new("file.delete.delay.ms", ConfigType.Long, "60000", "log.segment.delete.delay.ms"),
        new("flush.messages", ConfigType.Long, "9223372036854775807", "log.flush.interval.messages"),
        new("flush.ms", ConfigType.Long, "9223372036854775807", "log.flush.interval.ms"),
        new("index.interval.bytes", ConfigType.Int, "4096", "log.index.interval.bytes"),
        new("max.compaction.lag.ms", ConfigType.Long, "9223372036854775807", "log.cleaner.max.compaction.lag.ms"),
        new("max.message.bytes", ConfigType.Int, "1048588", "message.max.bytes"),
        new("message.timestamp.type", ConfigType.String, "CreateTime", "log.message.timestamp.type"),
        new("min.cleanable.dirty.ratio", ConfigType.Double, "0.5", "log.cleaner.min.cleanable.ratio"),
        new("min.compaction.lag.ms", ConfigType.Long, "0", "log.cleaner.min.compaction.lag.ms"),
        new("retention.bytes", ConfigType.Long, "-1", "log.retention.bytes"),
        new("retention.ms", ConfigType.Long, "604800000", "log.retention.ms"),
        new("segment.bytes", ConfigType.Int, "1073741824", "log.segment.bytes"),
        new("segment.index.bytes", ConfigType.Int, "10485760", "log.index.size.max.bytes"),
        new("segment.ms", ConfigType.Long, "604800000", "log.roll.ms"),
    ];

    private static readonly Dictionary<string, Func<LogConfig, string, LogConfig>> Setters = new(StringComparer.Ordinal)
    {
        ["segment.bytes"] = (c, v) => c with { SegmentBytes = Int(v, 14) },
        ["segment.ms"] = (c, v) => c with { SegmentMs = Long(v, 1) },
        ["segment.index.bytes"] = (c, v) => c with { SegmentIndexBytes = Int(v, 4) },
        ["index.interval.bytes"] = (c, v) => c with { IndexIntervalBytes = Int(v, 0) },
        ["max.message.bytes"] = (c, v) => c with { MaxMessageBytes = Int(v, 0) },
        ["retention.ms"] = (c, v) => c with { RetentionMs = Long(v, -1) },
        ["retention.bytes"] = (c, v) => c with { RetentionBytes = Long(v, long.MinValue) },
        ["cleanup.policy"] = (c, v) => Policy(c, v),
        ["min.cleanable.dirty.ratio"] = (c, v) => c with { MinCleanableDirtyRatio = Ratio(v) },
        ["delete.retention.ms"] = (c, v) => c with { DeleteRetentionMs = Long(v, 0) },
        ["min.compaction.lag.ms"] = (c, v) => c with { MinCompactionLagMs = Long(v, 0) },
        ["max.compaction.lag.ms"] = (c, v) => c with { MaxCompactionLagMs = Long(v, 1) },
        ["flush.messages"] = (c, v) => c with { FlushMessages = Long(v, 1) },
        ["flush.ms"] = (c, v) => c with { FlushMs = Long(v, 0) },
        ["file.delete.delay.ms"] = (c, v) => c with { FileDeleteDelayMs = Long(v, 0) },
        ["message.timestamp.type"] = (c, v) => c with
        {
            MessageTimestampType = v switch
            {
                "CreateTime" => TimestampType.CreateTime,
                "LogAppendTime" => TimestampType.LogAppendTime,
                _ => throw new FormatException("must be CreateTime or LogAppendTime"),
            },
        },
    };

    public static IReadOnlyCollection<string> Names => Setters.Keys;

    /// <summary>The log config for a topic with these configs set (the rest are Kafka's defaults).</summary>
    public static LogConfig ToLogConfig(IEnumerable<KeyValuePair<string, string>> configs)
    {
        var config = new LogConfig();
        foreach (var (name, value) in configs)
        {
            if (Setters.TryGetValue(name, out var set))
            {
                config = set(config, value);
            }
        }

        return config;
    }

    /// <summary>Null when the setting is valid; otherwise a message naming it.</summary>
    public static string? Validate(string name, string? value)
    {
        if (!Setters.TryGetValue(name, out var set))
        {
            return $"Unknown topic config name: {name}";
        }

        if (value is null)
        {
            return $"Null value not supported for topic config {name}";
        }

        try
        {
            _ = set(new LogConfig(), value);
            return null;
        }
        catch (FormatException e)
        {
            return $"Invalid value {value} for configuration {name}: {e.Message}";
        }
    }

    private static LogConfig Policy(LogConfig config, string value)
    {
        var parts = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts.Any(p => p is not ("delete" or "compact")))
        {
            throw new FormatException("must be a list of delete and compact");
        }

        return config with { Delete = parts.Contains("delete"), Compact = parts.Contains("compact") };
    }

    private static int Int(string value, int min) =>
        int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min
            ? v
            : throw new FormatException($"must be an integer of at least {min}");

    private static long Long(string value, long min) =>
        long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min
            ? v
            : throw new FormatException($"must be a long of at least {min}");

    private static double Ratio(string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v is >= 0 and <= 1
            ? v
            : throw new FormatException("must be a number between 0 and 1");
}

/// <summary>Kafka's topic name rules.</summary>
public static class TopicNames
{
    public const int MaxLength = 249;

    /// <summary>Null when <paramref name="name"/> is legal; otherwise why not.</summary>
    public static string? Validate(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "Topic name is illegal, it can't be empty";
        }

        if (name is "." or "..")
        {
            return "Topic name cannot be \".\" or \"..\"";
        }

        if (name.Length > MaxLength)
        {
            return $"Topic name is illegal, it can't be longer than {MaxLength} characters, topic name: {name}";
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return $"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
            }
        }

        return null;
    }

    /// <summary>Kafka treats '.' and '_' as the same in metric names, so two topics may not differ only by them.</summary>
    public static string CollisionKey(string name) => name.Replace('.', '_');
}
