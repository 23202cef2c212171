using Osprey.Broker.Topics;

namespace Osprey.Broker.Config;

/// <summary>
/// The broker settings Osprey honours, with Kafka's names, types and defaults (../shared/kafka-configs/broker.tsv)
/// except where noted. The broker properties that supply topic defaults (log.retention.ms, message.max.bytes, …)
/// can also be changed while the broker runs, for one broker or as the cluster-wide default.
/// </summary>
public static class BrokerSettings
{
    /// <summary>Osprey's own setting: whether acks=all waits until the batch is fsynced (default true).</summary>
    public const string AcksAllFsync = "osprey.acks.all.fsync";

    /// <summary>
    /// Osprey's own setting: the least time, in microseconds, between the starts of two group-commit rounds (one
    /// fsync for every append that waits). 0 flushes as soon as the previous round ends.
    /// </summary>
    public const string GroupCommitIntervalUs = "osprey.group.commit.interval.us";

    /// <summary>
    /// Osprey's own setting: once a segment has gathered this many bytes not yet on disk, their write-out starts
    /// (without waiting for it), so unsynced data never reaches the disk in one late burst. 0 leaves it to the kernel.
    /// </summary>
    public const string LogWritebackBytes = "osprey.log.writeback.bytes";

    /// <summary>
    /// Osprey's own setting: how many .log files of inactive segments may be open at once (each partition's active
    /// segment always is; index files are never held open). 0, the default, takes a quarter of the process's
    /// descriptor limit, between 16 and 4,096.
    /// </summary>
    public const string LogOpenSegmentsMax = "osprey.log.open.segments.max";

    /// <summary>Coarser-unit settings consulted when the finer one is not set, with the factor to milliseconds.</summary>
    public static IReadOnlyDictionary<string, (string Name, long Factor)[]> Fallbacks { get; } = new Dictionary<string, (string, long)[]>(StringComparer.Ordinal)
    {
        ["log.retention.ms"] = [("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000)],
        ["log.roll.ms"] = [("log.roll.hours", 3_600_000)],
        ["log.roll.jitter.ms"] = [("log.roll.jitter.hours", 3_600_000)],
    };

    public static IReadOnlyDictionary<string, ConfigDefinition> All { get; } = Build();

    public static ConfigDefinition? Find(string name) => All.GetValueOrDefault(name);

    private static Dictionary<string, ConfigDefinition> Build()
    {
        ConfigDefinition[] own =
        [
            // node.id has no default in Kafka; a single-node Osprey is node 1 unless told otherwise.
            new("node.id", ConfigType.Int, "1") { Min = 0 },
            new("broker.id", ConfigType.Int, "-1") { Min = -1 },

            // Osprey's default listens on loopback only (Kafka's is PLAINTEXT://:9092, every interface).
            new("listeners", ConfigType.String, "PLAINTEXT://127.0.0.1:9092"),
            new("advertised.listeners", ConfigType.String, null),

            // Read with listeners: each listener's security protocol, the controller's listeners, and the quorum,
            // which may name only this node until the Raft quorum arrives.
            new("listener.security.protocol.map", ConfigType.String, "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
            new("controller.listener.names", ConfigType.String, null),
            new("inter.broker.listener.name", ConfigType.String, null),
            new("process.roles", ConfigType.List, "broker,controller") { ValidValues = ["broker", "controller"] },
            new("controller.quorum.voters", ConfigType.List, null),
            new("controller.quorum.bootstrap.servers", ConfigType.List, null),
            new("broker.rack", ConfigType.String, null),

            // The broker's session with the controller: heartbeats, and fencing when they stop.
            new("broker.heartbeat.interval.ms", ConfigType.Int, "2000") { Min = 1 },
            new("broker.session.timeout.ms", ConfigType.Int, "9000") { Min = 1 },

            // Replication: when a follower counts as out of sync, how often high watermarks are checkpointed, and how
            // followers fetch.
            new("replica.lag.time.max.ms", ConfigType.Long, "30000") { Min = 1 },
            new("replica.high.watermark.checkpoint.interval.ms", ConfigType.Long, "5000") { Min = 1 },
            new("replica.fetch.wait.max.ms", ConfigType.Int, "500") { Min = 0 },
            new("replica.fetch.min.bytes", ConfigType.Int, "1") { Min = 1 },
            new("replica.fetch.max.bytes", ConfigType.Int, "1048576") { Min = 0 },
            new("replica.fetch.response.max.bytes", ConfigType.Int, "10485760") { Min = 0 },
            new("replica.fetch.backoff.ms", ConfigType.Int, "1000") { Min = 0 },
            new("num.replica.fetchers", ConfigType.Int, "1") { Min = 1 },

            // Leadership: the controller moves leaderships back to preferred replicas every check interval (KRaft
            // ignores the per-broker percentage; it is accepted for compatibility).
            new("auto.leader.rebalance.enable", ConfigType.Boolean, "true"),
            new("leader.imbalance.check.interval.seconds", ConfigType.Long, "300") { Min = 1 },
            new("leader.imbalance.per.broker.percentage", ConfigType.Int, "10") { Min = 0 },

            // The metadata quorum (Raft): election and request timeouts, and how often its state is snapshotted.
            new("controller.quorum.election.timeout.ms", ConfigType.Int, "1000") { Min = 1 },
            new("controller.quorum.request.timeout.ms", ConfigType.Int, "2000") { Min = 1 },
            new("metadata.log.max.record.bytes.between.snapshots", ConfigType.Long, "20971520") { Min = 1 },
            new("metadata.log.max.snapshot.interval.ms", ConfigType.Long, "3600000") { Min = 0 },

            // log.dirs wins over log.dir; Osprey's default is ./data (Kafka's is /tmp/kafka-logs).
            new("log.dirs", ConfigType.String, null),
            new("log.dir", ConfigType.String, "data"),
            new("auto.create.topics.enable", ConfigType.Boolean, "true"),
            new("delete.topic.enable", ConfigType.Boolean, "true"),
            new("num.partitions", ConfigType.Int, "1") { Min = 1 },
            new("default.replication.factor", ConfigType.Int, "1") { Min = 1 },
            new("socket.request.max.bytes", ConfigType.Int, "104857600") { Min = 1 },

            // Kafka's default is -1 (no limit); Osprey bounds the bytes of requests read but not yet handled.
            new("queued.max.request.bytes", ConfigType.Long, "268435456"),
            new("max.connections", ConfigType.Int, "2147483647") { Min = 0 },
            new("connections.max.idle.ms", ConfigType.Long, "600000"),
            new("log.retention.check.interval.ms", ConfigType.Long, "300000") { Min = 1 },

            // Osprey checks flush.ms / flush.messages every second (Kafka's default never checks).
            new("log.flush.scheduler.interval.ms", ConfigType.Long, "1000") { Min = 1 },
            new("log.flush.offset.checkpoint.interval.ms", ConfigType.Int, "60000") { Min = 1 },
            new("log.cleaner.enable", ConfigType.Boolean, "true"),
            new("log.cleaner.backoff.ms", ConfigType.Long, "15000") { Min = 0 },
            new("log.cleaner.dedupe.buffer.size", ConfigType.Long, "134217728") { Min = 1 },
            new("log.cleaner.io.buffer.load.factor", ConfigType.Double, "0.9") { Min = 0.01m, Max = 1 },
            new("log.cleaner.threads", ConfigType.Int, "1") { Min = 0 },
            new("max.incremental.fetch.session.cache.slots", ConfigType.Int, "1000") { Min = 0 },
            new("producer.id.expiration.ms", ConfigType.Int, "86400000") { Min = 1 },
            new("transactional.id.expiration.ms", ConfigType.Int, "604800000") { Min = 1 },
            new("transaction.max.timeout.ms", ConfigType.Int, "900000") { Min = 1 },
            new("transaction.state.log.num.partitions", ConfigType.Int, "50") { Min = 1 },
            new("transaction.state.log.segment.bytes", ConfigType.Int, "104857600") { Min = 1 },
            new("transaction.state.log.replication.factor", ConfigType.Short, "3") { Min = 1 },
            new("transaction.state.log.min.isr", ConfigType.Int, "2") { Min = 1 },
            new("request.timeout.ms", ConfigType.Int, "30000") { Min = 1 },
            new("transaction.abort.timed.out.transaction.cleanup.interval.ms", ConfigType.Int, "10000") { Min = 1 },
            new("transaction.remove.expired.transaction.cleanup.interval.ms", ConfigType.Int, "3600000") { Min = 1 },
            new("transaction.partition.verification.enable", ConfigType.Boolean, "true"),
            new(AcksAllFsync, ConfigType.Boolean, "true"),
            new(GroupCommitIntervalUs, ConfigType.Long, "2000") { Min = 0, Max = 1_000_000 },
            new(LogWritebackBytes, ConfigType.Long, "1048576") { Min = 0 },
            new(LogOpenSegmentsMax, ConfigType.Int, "0") { Min = 0 },

            // The group coordinator. On a single node the internal topics' replication factors are capped at 1.
            new("group.initial.rebalance.delay.ms", ConfigType.Int, "3000") { Min = 0 },
            new("group.min.session.timeout.ms", ConfigType.Int, "6000") { Min = 0 },
            new("group.max.session.timeout.ms", ConfigType.Int, "1800000") { Min = 0 },
            new("group.max.size", ConfigType.Int, "2147483647") { Min = 1 },
            new("group.consumer.heartbeat.interval.ms", ConfigType.Int, "5000") { Min = 1 },
            new("group.consumer.session.timeout.ms", ConfigType.Int, "45000") { Min = 1 },
            new("group.consumer.max.size", ConfigType.Int, "2147483647") { Min = 1 },
            new("group.consumer.assignors", ConfigType.List, "uniform,range") { ValidValues = ["uniform", "range"] },
            new("offsets.topic.num.partitions", ConfigType.Int, "50") { Min = 1 },
            new("offsets.topic.replication.factor", ConfigType.Short, "3") { Min = 1 },
            new("offsets.commit.timeout.ms", ConfigType.Int, "5000") { Min = 1 },
            new("offsets.topic.segment.bytes", ConfigType.Int, "104857600") { Min = 1 },
            new("offsets.retention.minutes", ConfigType.Int, "10080") { Min = 1 },
            new("offsets.retention.check.interval.ms", ConfigType.Long, "600000") { Min = 1 },
            new("offset.metadata.max.bytes", ConfigType.Int, "4096"),

            // The coarser-unit fallbacks of the topic defaults below; static, as in Kafka (only the .ms forms change
            // while the broker runs).
            new("log.retention.minutes", ConfigType.Int, null),
            new("log.retention.hours", ConfigType.Int, "168"),
            new("log.roll.hours", ConfigType.Int, "168") { Min = 1 },
            new("log.roll.jitter.hours", ConfigType.Int, "0") { Min = 0 },
        ];

        var all = own.ToDictionary(d => d.Name, StringComparer.Ordinal);
        foreach (var (topic, serverDefault) in TopicConfigs.All)
        {
            if (serverDefault is null)
            {
                continue;
            }

            // Settings with a coarser fallback have no default of their own: the fallback supplies it.
            var withFallback = Fallbacks.ContainsKey(serverDefault);
            all[serverDefault] = topic with
            {
                Name = serverDefault,
                Default = withFallback ? null : topic.Default,
                Min = serverDefault == "log.segment.bytes" ? 1_048_576 : topic.Min,
                Dynamic = true,
            };
        }

        return all;
    }
}
