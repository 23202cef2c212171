using Microsoft.Extensions.Logging;

namespace Osprey.Storage;

/// <summary>What a segment scan found: the torn tail it cut, and damaged batches below the recovery point it kept.</summary>
/// <param name="TruncatedBytes">Bytes cut off the end (a write that had not reached the disk when the broker stopped).</param>
/// <param name="TruncatedFromOffset">The first offset the cut removed (the segment's end after the cut).</param>
/// <param name="Corrupt">Batches that fail their checks below the recovery point: fsynced once, so damage, not a torn write.</param>
public sealed record SegmentRecovery(long TruncatedBytes, long TruncatedFromOffset, IReadOnlyList<(long Position, int Length, long AfterOffset)> Corrupt);

/// <summary>Damage the storage will not repair by deleting data: the log is left as it is and the open fails, naming it.</summary>
public sealed class CorruptLogException(string message) : KafkaStorageException(Protocol.ErrorCode.KafkaStorageError, message);

/// <summary>The storage layer's log lines (Microsoft.Extensions.Logging): every cut and every error worth a person's attention.</summary>
internal static partial class StorageEvents
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovery of {Topic}-{Partition}: cut {Bytes} bytes from offset {Offset} on in segment {Segment} (written after the last fsync, torn by the stop)")]
    public static partial void TornTailCut(ILogger logger, string topic, int partition, long bytes, long offset, string segment);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovery of {Topic}-{Partition}: removed {Count} later segments ({Bytes} bytes, offsets {From} on), not fsynced and no longer contiguous after the cut")]
    public static partial void LaterSegmentsRemoved(ILogger logger, string topic, int partition, int count, long bytes, long from);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Topic}-{Partition}: a batch of {Length} bytes at position {Position} of {Segment} (after offset {Offset}) fails its checks below the recovery point: data that was fsynced is damaged on disk. It is kept as it is (nothing is deleted); readers of those offsets will see the damage.")]
    public static partial void CorruptBatchKept(ILogger logger, string topic, int partition, int length, long position, string segment, long offset);

    [LoggerMessage(Level = LogLevel.Information, Message = "Recovered {Topic}-{Partition} after an unclean stop: {Segments} segments scanned, log end offset {End}, in {Ms} ms")]
    public static partial void Recovered(ILogger logger, string topic, int partition, int segments, long end, long ms);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Topic}-{Partition}: appends fail: {Reason}")]
    public static partial void AppendsFailing(ILogger logger, string topic, int partition, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Topic}-{Partition}: appends succeed again after {Failures} failed")]
    public static partial void AppendsRecovered(ILogger logger, string topic, int partition, long failures);
}
