using System.Globalization;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Storage;

namespace Osprey.Broker.Config;

/// <summary>A value a setting could take from one source, as DescribeConfigs lists synonyms.</summary>
public readonly record struct ConfigSynonym(string Name, string? Value, ConfigSource Source);

/// <summary>
/// The values in force, combining a topic's overrides, the dynamic broker configs in the metadata image (this
/// node's, then the cluster-wide default), the static settings and Kafka's defaults, in that order. A broker
/// setting with coarser fallbacks (log.retention.ms, then .minutes, then .hours) consults each in turn.
/// </summary>
public sealed class EffectiveConfigs(BrokerOptions options)
{
    private string NodeName => options.NodeId.ToString(CultureInfo.InvariantCulture);

    /// <summary>Every value the broker setting <paramref name="name"/> could take, the one in force first.</summary>
    public List<ConfigSynonym> BrokerSynonyms(ClusterImage image, string name)
    {
        var names = BrokerSettings.Fallbacks.TryGetValue(name, out var fallbacks) ? [name, .. fallbacks.Select(f => f.Name)] : new[] { name };
        var synonyms = new List<ConfigSynonym>();
        foreach (var n in names)
        {
            if (BrokerSettings.Find(n)?.Dynamic == true)
            {
                if (image.BrokerConfigsOf(NodeName).TryGetValue(n, out var node))
                {
                    synonyms.Add(new(n, node, ConfigSource.DynamicBroker));
                }

                if (image.BrokerConfigsOf("").TryGetValue(n, out var cluster))
                {
                    synonyms.Add(new(n, cluster, ConfigSource.DynamicDefaultBroker));
                }
            }

            if (options.Config.Values.TryGetValue(n, out var value))
            {
                synonyms.Add(new(n, value, ConfigSource.StaticBroker));
            }
        }

        // Only the setting's own default is a synonym (Kafka lists log.retention.ms's, not log.retention.hours'),
        // though a coarser fallback's default still decides the value when nothing is set (TopicValue).
        if (BrokerSettings.Find(name)?.Default is { } ownDefault)
        {
            synonyms.Add(new(name, ownDefault, ConfigSource.Default));
        }

        return synonyms;
    }

    /// <summary>The value of a broker setting in force, converted to the unit of <paramref name="name"/>.</summary>
    public string? BrokerValue(ClusterImage image, string name)
    {
        if (BrokerSynonyms(image, name) is [var first, ..])
        {
            return InUnitOf(name, first);
        }

        // Nothing set and no default of its own (log.retention.ms): the coarser fallback's default is in force.
        return BrokerSettings.Fallbacks.TryGetValue(name, out var fallbacks)
            && fallbacks.Select(f => BrokerSettings.Find(f.Name)).FirstOrDefault(d => d?.Default is not null) is { } withDefault
            ? InUnitOf(name, new ConfigSynonym(withDefault.Name, withDefault.Default, ConfigSource.Default))
            : null;
    }

    /// <summary>A topic config's value in force and where it comes from, with every synonym when asked.</summary>
    public (string? Value, ConfigSource Source, List<ConfigSynonym> Synonyms) TopicValue(ClusterImage image, TopicImage? topic, ConfigDefinition definition, string? serverDefault)
    {
        var synonyms = new List<ConfigSynonym>();
        if (topic is not null && topic.Configs.TryGetValue(definition.Name, out var own))
        {
            synonyms.Add(new(definition.Name, own, ConfigSource.DynamicTopic));
        }

        if (serverDefault is not null)
        {
            synonyms.AddRange(BrokerSynonyms(image, serverDefault));
        }

        if (synonyms.Count == 0)
        {
            return (definition.Default, ConfigSource.Default, synonyms);
        }

        var value = synonyms[0].Source == ConfigSource.DynamicTopic ? synonyms[0].Value : InUnitOf(serverDefault!, synonyms[0]);
        return (value, synonyms[0].Source, synonyms);
    }

    /// <summary>The log settings of <paramref name="topic"/> (or of a new topic with no overrides).</summary>
    public LogConfig LogConfigFor(ClusterImage image, TopicImage? topic) =>
        TopicConfigs.ToLogConfig(TopicConfigs.All
            .Select(c => (c.Definition.Name, TopicValue(image, topic, c.Definition, c.ServerDefault).Value))
            .Where(c => c.Value is not null)
            .Select(c => KeyValuePair.Create(c.Name, c.Value!)));

    /// <summary>The storage settings the static config asks for.</summary>
    public LogManagerOptions LogManagerOptions() => new()
    {
        RetentionCheckIntervalMs = options.Config.GetLong("log.retention.check.interval.ms"),
        FlushCheckIntervalMs = options.Config.GetLong("log.flush.scheduler.interval.ms"),
        CheckpointIntervalMs = options.Config.GetInt("log.flush.offset.checkpoint.interval.ms"),
        DurableAppends = options.Config.GetBool(BrokerSettings.AcksAllFsync),
        GroupCommitInterval = TimeSpan.FromMicroseconds(options.Config.GetLong(BrokerSettings.GroupCommitIntervalUs)),
        WritebackBytes = options.Config.GetLong(BrokerSettings.LogWritebackBytes),
        OpenSegmentsMax = options.Config.GetInt(BrokerSettings.LogOpenSegmentsMax) is > 0 and var max ? max : null,
        ProducerIdExpirationMs = options.Config.GetInt("producer.id.expiration.ms"),
        Cleaner = new LogCleanerOptions
        {
            Enabled = options.Config.GetBool("log.cleaner.enable") && options.Config.GetInt("log.cleaner.threads") > 0,
            BackoffMs = options.Config.GetLong("log.cleaner.backoff.ms"),
            DedupeBufferSize = options.Config.GetLong("log.cleaner.dedupe.buffer.size"),
            DedupeBufferLoadFactor = options.Config.GetDouble("log.cleaner.io.buffer.load.factor"),
        },
    };

    private static string? InUnitOf(string name, ConfigSynonym synonym)
    {
        if (synonym.Name == name || synonym.Value is null)
        {
            return synonym.Value;
        }

        var factor = BrokerSettings.Fallbacks[name].First(f => f.Name == synonym.Name).Factor;
        var value = long.Parse(synonym.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return (value < 0 ? -1 : value * factor).ToString(CultureInfo.InvariantCulture);
    }
}
