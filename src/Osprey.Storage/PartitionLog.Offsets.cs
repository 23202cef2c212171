using Osprey.Protocol.Records;

namespace Osprey.Storage;

/// <summary>An offset and the timestamp of the record found there.</summary>
public readonly record struct TimestampAndOffset(long Timestamp, long Offset);

public sealed partial class PartitionLog
{
    /// <summary>
    /// The first record with timestamp ≥ <paramref name="timestamp"/> (ListOffsets by time), or null when every
    /// record is older. Only batches below <paramref name="maxOffset"/> are considered.
    /// </summary>
    public TimestampAndOffset? OffsetForTimestamp(long timestamp, long maxOffset = long.MaxValue)
    {
        var segments = _segments;
        var logStart = LogStartOffset;
        using var decompressed = new PooledBufferWriter();
        Span<byte> next = stackalloc byte[RecordBatchHeader.Size];
        foreach (var segment in segments)
        {
            if (segment.MaxTimestamp < timestamp || segment.NextOffset <= logStart)
            {
                continue;
            }

            var from = Math.Max(segment.TimeIndex.Lookup(timestamp), logStart);
            var position = segment.FindBatchPosition(from, segment.Size, out var header);
            var buffer = Array.Empty<byte>();
            while (position >= 0 && header.BaseOffset < maxOffset)
            {
                if (header.MaxTimestamp >= timestamp && header.LastOffset >= logStart)
                {
                    if (buffer.Length < header.TotalSize)
                    {
                        buffer = new byte[header.TotalSize];
                    }

                    segment.ReadBytes(position, buffer.AsSpan(0, header.TotalSize));
                    var batch = RecordBatch.Parse(buffer.AsSpan(0, header.TotalSize));
                    decompressed.Clear();
                    foreach (var record in batch.GetRecords(decompressed))
                    {
                        if (record.Timestamp >= timestamp && record.Offset >= logStart)
                        {
                            return new TimestampAndOffset(record.Timestamp, record.Offset);
                        }
                    }
                }

                position += header.TotalSize;
                var nextHeader = segment.ReadHeader(position, next);
                if (nextHeader is null)
                {
                    break;
                }

                header = nextHeader.Value;
            }
        }

        return null;
    }

    /// <summary>The record with the largest timestamp (ListOffsets MAX_TIMESTAMP), or null for an empty log.</summary>
    public TimestampAndOffset? MaxTimestampAndOffset()
    {
        TimestampAndOffset? best = null;
        foreach (var segment in _segments)
        {
            if (segment.MaxTimestamp >= 0 && (best is null || segment.MaxTimestamp > best.Value.Timestamp))
            {
                best = new TimestampAndOffset(segment.MaxTimestamp, segment.OffsetOfMaxTimestamp);
            }
        }

        if (best is null)
        {
            return null;
        }

        // OffsetOfMaxTimestamp names the batch; the record itself is found by timestamp within it.
        return OffsetForTimestamp(best.Value.Timestamp) is { } exact && exact.Timestamp == best.Value.Timestamp ? exact : best;
    }

    /// <summary>
    /// Moves the log start offset to <paramref name="offset"/> (DeleteRecords). Whole segments below it are deleted
    /// now; records below it in the first remaining segment are no longer served.
    /// </summary>
    public long DeleteRecordsBefore(long offset)
    {
        lock (_lock)
        {
            if (offset > LogEndOffset)
            {
                throw new Osprey.Protocol.KafkaProtocolException(
                    Osprey.Protocol.ErrorCode.OffsetOutOfRange,
                    $"{Topic}-{Partition}: cannot delete records before {offset}, past the log end offset {LogEndOffset}.");
            }

            if (offset > LogStartOffset)
            {
                Interlocked.Exchange(ref _logStartOffset, offset);
                LeaderEpochs.TruncateFromStart(offset);
                DeleteSegmentsLocked(s => s.NextOffset <= offset && s != ActiveSegment);
            }

            return LogStartOffset;
        }
    }
}
