using System.Globalization;
using Osprey.Broker.Config;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>
/// The topic configs (Kafka's names, types and defaults, ../shared/kafka-configs/topic.tsv), the broker setting
/// that supplies each default, their validation, and how they become a <see cref="LogConfig"/>. Every topic config
/// Kafka has is accepted and reported; the ones about replication throttles, remote storage and preallocation
/// are kept but change nothing on a single node.
/// </summary>
public static class TopicConfigs
{
    private static readonly string[] Codecs = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

    /// <summary>Each topic config with the broker property that supplies its default.</summary>
    public static IReadOnlyList<(ConfigDefinition Definition, string? ServerDefault)> All { get; } =
    [
        (new("cleanup.policy", ConfigType.List, "delete") { ValidValues = ["compact", "delete"] }, "log.cleanup.policy"),
        (new("compression.gzip.level", ConfigType.Int, "-1") { Min = -1, Max = 9 }, "compression.gzip.level"),
        (new("compression.lz4.level", ConfigType.Int, "9") { Min = 1, Max = 17 }, "compression.lz4.level"),
        (new("compression.type", ConfigType.String, "producer") { ValidValues = Codecs }, "compression.type"),
        (new("compression.zstd.level", ConfigType.Int, "3") { Min = -131072, Max = 22 }, "compression.zstd.level"),
        (new("delete.retention.ms", ConfigType.Long, "86400000") { Min = 0 }, "log.cleaner.delete.retention.ms"),
        (new("file.delete.delay.ms", ConfigType.Long, "60000") { Min = 0 }, "log.segment.delete.delay.ms"),
        (new("flush.messages", ConfigType.Long, "9223372036854775807") { Min = 1 }, "log.flush.interval.messages"),
        (new("flush.ms", ConfigType.Long, "9223372036854775807") { Min = 0 }, "log.flush.interval.ms"),
        (new("follower.replication.throttled.replicas", ConfigType.List, ""), null),
        (new("index.interval.bytes", ConfigType.Int, "4096") { Min = 0 }, "log.index.interval.bytes"),
        (new("leader.replication.throttled.replicas", ConfigType.List, ""), null),
        (new("local.retention.bytes", ConfigType.Long, "-2") { Min = -2 }, "log.local.retention.bytes"),
        (new("local.retention.ms", ConfigType.Long, "-2") { Min = -2 }, "log.local.retention.ms"),
        (new("max.compaction.lag.ms", ConfigType.Long, "9223372036854775807") { Min = 1 }, "log.cleaner.max.compaction.lag.ms"),
        (new("max.message.bytes", ConfigType.Int, "1048588") { Min = 0 }, "message.max.bytes"),
        (new("message.timestamp.after.max.ms", ConfigType.Long, "3600000") { Min = 0 }, "log.message.timestamp.after.max.ms"),
        (new("message.timestamp.before.max.ms", ConfigType.Long, "9223372036854775807") { Min = 0 }, "log.message.timestamp.before.max.ms"),
        (new("message.timestamp.type", ConfigType.String, "CreateTime") { ValidValues = ["CreateTime", "LogAppendTime"] }, "log.message.timestamp.type"),
        (new("min.cleanable.dirty.ratio", ConfigType.Double, "0.5") { Min = 0, Max = 1 }, "log.cleaner.min.cleanable.ratio"),
        (new("min.compaction.lag.ms", ConfigType.Long, "0") { Min = 0 }, "log.cleaner.min.compaction.lag.ms"),
        (new("min.insync.replicas", ConfigType.Int, "1") { Min = 1 }, "min.insync.replicas"),
        (new("preallocate", ConfigType.Boolean, "false"), "log.preallocate"),
        (new("remote.log.copy.disable", ConfigType.Boolean, "false"), null),
        (new("remote.log.delete.on.disable", ConfigType.Boolean, "false"), null),
        (new("remote.storage.enable", ConfigType.Boolean, "false"), null),
        (new("retention.bytes", ConfigType.Long, "-1"), "log.retention.bytes"),
        (new("retention.ms", ConfigType.Long, "604800000") { Min = -1 }, "log.retention.ms"),
        (new("segment.bytes", ConfigType.Int, "1073741824") { Min = 14 }, "log.segment.bytes"),
        (new("segment.index.bytes", ConfigType.Int, "10485760") { Min = 4 }, "log.index.size.max.bytes"),
        (new("segment.jitter.ms", ConfigType.Long, "0") { Min = 0 }, "log.roll.jitter.ms"),
        (new("segment.ms", ConfigType.Long, "604800000") { Min = 1 }, "log.roll.ms"),
        (new("unclean.leader.election.enable", ConfigType.Boolean, "false"), "unclean.leader.election.enable"),
    ];

    private static readonly Dictionary<string, ConfigDefinition> ByName = All.ToDictionary(d => d.Definition.Name, d => d.Definition, StringComparer.Ordinal);

    private static readonly Dictionary<string, Func<LogConfig, string, LogConfig>> Setters = new(StringComparer.Ordinal)
    {
        ["segment.bytes"] = (c, v) => c with { SegmentBytes = Int(v) },
        ["segment.ms"] = (c, v) => c with { SegmentMs = Long(v) },
        ["segment.index.bytes"] = (c, v) => c with { SegmentIndexBytes = Int(v) },
        ["index.interval.bytes"] = (c, v) => c with { IndexIntervalBytes = Int(v) },
        ["max.message.bytes"] = (c, v) => c with { MaxMessageBytes = Int(v) },
        ["retention.ms"] = (c, v) => c with { RetentionMs = Long(v) },
        ["retention.bytes"] = (c, v) => c with { RetentionBytes = Long(v) },
        ["cleanup.policy"] = (c, v) => c with { Delete = v.Contains("delete", StringComparison.Ordinal), Compact = v.Contains("compact", StringComparison.Ordinal) },
        ["min.cleanable.dirty.ratio"] = (c, v) => c with { MinCleanableDirtyRatio = double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture) },
        ["delete.retention.ms"] = (c, v) => c with { DeleteRetentionMs = Long(v) },
        ["min.compaction.lag.ms"] = (c, v) => c with { MinCompactionLagMs = Long(v) },
        ["max.compaction.lag.ms"] = (c, v) => c with { MaxCompactionLagMs = Long(v) },
        ["flush.messages"] = (c, v) => c with { FlushMessages = Long(v) },
        ["flush.ms"] = (c, v) => c with { FlushMs = Long(v) },
        ["file.delete.delay.ms"] = (c, v) => c with { FileDeleteDelayMs = Long(v) },
        ["message.timestamp.type"] = (c, v) => c with { MessageTimestampType = v == "LogAppendTime" ? TimestampType.LogAppendTime : TimestampType.CreateTime },
        ["message.timestamp.before.max.ms"] = (c, v) => c with { MessageTimestampBeforeMaxMs = Long(v) },
        ["message.timestamp.after.max.ms"] = (c, v) => c with { MessageTimestampAfterMaxMs = Long(v) },
        ["min.insync.replicas"] = (c, v) => c with { MinInsyncReplicas = Int(v) },
        ["compression.type"] = (c, v) => c with
        {
            CompressionType = v switch
            {
                "uncompressed" => CompressionType.None,
                "gzip" => CompressionType.Gzip,
                "snappy" => CompressionType.Snappy,
                "lz4" => CompressionType.Lz4,
                "zstd" => CompressionType.Zstd,
                _ => null,
            },
        },
    };

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static ConfigDefinition? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>
    /// The log config for a topic whose effective configs (its overrides laid over the broker's defaults) are
    /// <paramref name="configs"/>; whatever is missing takes Kafka's default. The values must have been validated.
    /// </summary>
    public static LogConfig ToLogConfig(IEnumerable<KeyValuePair<string, string>> configs)
    {
        var config = new LogConfig();
        foreach (var (name, value) in configs)
        {
            if (Setters.TryGetValue(name, out var set))
            {
                config = set(config, value.Trim());
            }
        }

        return config;
    }

    /// <summary>Null when the setting is valid; otherwise a message naming it.</summary>
    public static string? Validate(string name, string? value) =>
        !ByName.TryGetValue(name, out var definition) ? $"Unknown topic config name: {name}"
        : value is null ? $"Null value not supported for topic config {name}"
        : definition.Validate(value);

    private static int Int(string value) => int.Parse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    private static long Long(string value) => long.Parse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
}

/// <summary>Kafka's topic name rules.</summary>
public static class TopicNames
{
    public const int MaxLength = 249;

    /// <summary>Null when <paramref name="name"/> is legal; otherwise why not.</summary>
    public static string? Validate(string? name)
    {
        // Worded as Kafka 4.0's controller answers CreateTopics (read off the reference broker with kafka-topics).
        if (string.IsNullOrEmpty(name))
        {
            return "Topic name is invalid: the empty string is not allowed";
        }

        if (name is "." or "..")
        {
            return $"Topic name is invalid: '{name}' is not allowed";
        }

        if (name.Length > MaxLength)
        {
            return $"Topic name is invalid: the length of '{name}' is longer than the max allowed length {MaxLength}";
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return $"Topic name is invalid: '{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'";
            }
        }

        return null;
    }

    /// <summary>
    /// Whether a topic is internal (reported so in metadata, never deleted by clients): Osprey treats every name
    /// starting with "__" as internal, which covers __consumer_offsets and __transaction_state.
    /// </summary>
    public static bool IsInternal(string name) => name.StartsWith("__", StringComparison.Ordinal);

    /// <summary>Kafka treats '.' and '_' as the same in metric names, so two topics may not differ only by them.</summary>
    public static string CollisionKey(string name) => name.Replace('.', '_');
}
