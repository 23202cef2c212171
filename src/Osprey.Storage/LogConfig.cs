using Osprey.Protocol.Records;

namespace Osprey.Storage;

/// <summary>
/// The per-log settings, named and defaulted as Kafka's topic configs (../shared/kafka-configs/topic.tsv).
/// </summary>
public sealed record LogConfig
{
    /// <summary>segment.bytes: roll to a new segment when the active one would grow past this.</summary>
    public int SegmentBytes { get; init; } = 1024 * 1024 * 1024;

    /// <summary>segment.ms: roll when the active segment is older than this (and not empty).</summary>
    public long SegmentMs { get; init; } = 7L * 24 * 60 * 60 * 1000;

    /// <summary>segment.index.bytes: the most an offset index may hold (8 bytes an entry); roll when full.</summary>
    public int SegmentIndexBytes { get; init; } = 10 * 1024 * 1024;

    /// <summary>index.interval.bytes: bytes of log between offset index entries.</summary>
    public int IndexIntervalBytes { get; init; } = 4096;

    /// <summary>max.message.bytes: the largest record batch the log accepts.</summary>
    public int MaxMessageBytes { get; init; } = 1048588;

    /// <summary>retention.ms: delete closed segments whose newest record is older than this; -1 keeps forever.</summary>
    public long RetentionMs { get; init; } = 7L * 24 * 60 * 60 * 1000;

    /// <summary>retention.bytes: delete the oldest closed segments while the log is bigger than this; -1 unlimited.</summary>
    public long RetentionBytes { get; init; } = -1;

    /// <summary>cleanup.policy contains "delete".</summary>
    public bool Delete { get; init; } = true;

    /// <summary>cleanup.policy contains "compact".</summary>
    public bool Compact { get; init; }

    /// <summary>min.cleanable.dirty.ratio.</summary>
    public double MinCleanableDirtyRatio { get; init; } = 0.5;

    /// <summary>delete.retention.ms: how long tombstones survive compaction.</summary>
    public long DeleteRetentionMs { get; init; } = 24L * 60 * 60 * 1000;

    /// <summary>min.compaction.lag.ms.</summary>
    public long MinCompactionLagMs { get; init; }

    /// <summary>max.compaction.lag.ms.</summary>
    public long MaxCompactionLagMs { get; init; } = long.MaxValue;

    /// <summary>flush.messages: fsync after this many messages even when nobody waits for it.</summary>
    public long FlushMessages { get; init; } = long.MaxValue;

    /// <summary>flush.ms: fsync when unflushed data is older than this even when nobody waits for it.</summary>
    public long FlushMs { get; init; } = long.MaxValue;

    /// <summary>message.timestamp.type.</summary>
    public TimestampType MessageTimestampType { get; init; } = TimestampType.CreateTime;

    /// <summary>message.timestamp.before.max.ms: how far in the past a CreateTime timestamp may lie.</summary>
    public long MessageTimestampBeforeMaxMs { get; init; } = long.MaxValue;

    /// <summary>message.timestamp.after.max.ms: how far in the future a CreateTime timestamp may lie.</summary>
    public long MessageTimestampAfterMaxMs { get; init; } = 3_600_000;

    /// <summary>compression.type: the codec batches are stored with; null keeps the producer's (<c>producer</c>).</summary>
    public CompressionType? CompressionType { get; init; }

    /// <summary>min.insync.replicas: acks=all appends need at least this many in-sync replicas.</summary>
    public int MinInsyncReplicas { get; init; } = 1;

    /// <summary>
    /// How old the active segment may get before it rolls: segment.ms, or max.compaction.lag.ms when that is
    /// smaller on a compacted log, so records cannot wait in the active segment past the lag (KIP-354).
    /// </summary>
    public long MaxSegmentMs => Compact && MaxCompactionLagMs > 0 ? Math.Min(SegmentMs, MaxCompactionLagMs) : SegmentMs;

    /// <summary>file.delete.delay.ms: how long a deleted segment's files linger for readers still using them.</summary>
    public long FileDeleteDelayMs { get; init; } = 60_000;
}
