using Osprey.Protocol.Records;

namespace Osprey.Client;

/// <summary>What a fetch gave for one partition: its records, high watermark, and where the next fetch starts.</summary>
public readonly record struct FetchedPartition(IReadOnlyList<ConsumedRecord> Records, long HighWatermark, long NextOffset)
{
    public void Deconstruct(out IReadOnlyList<ConsumedRecord> records, out long highWatermark) => (records, highWatermark) = (Records, HighWatermark);
}

/// <summary>A record read from a partition, copied out of the fetched bytes.</summary>
public sealed record ConsumedRecord(
    string Topic,
    int Partition,
    long Offset,
    long Timestamp,
    TimestampType TimestampType,
    byte[]? Key,
    byte[]? Value,
    IReadOnlyList<KeyValuePair<string, byte[]?>> Headers)
{
    /// <summary>
    /// The data records of fetched batches at or after <paramref name="fromOffset"/> (control batches skipped). With
    /// <paramref name="aborted"/> (a read_committed fetch's aborted transactions: producer id and first offset), the
    /// batches of aborted transactions are dropped as Kafka's consumers drop them: a producer's transactional
    /// batches from its aborted transaction's first offset on, until that producer's ABORT marker.
    /// </summary>
    public static List<ConsumedRecord> FromBatches(string topic, int partition, ReadOnlySpan<byte> batches, long fromOffset, IReadOnlyList<(long ProducerId, long FirstOffset)>? aborted = null)
    {
        var result = new List<ConsumedRecord>();
        using var buffer = new PooledBufferWriter(0);
        var pending = aborted is null ? null : new Queue<(long ProducerId, long FirstOffset)>(aborted.OrderBy(a => a.FirstOffset));
        var abortedProducers = new HashSet<long>();
        foreach (var batch in RecordBatch.Enumerate(batches, allowTrailingPartialBatch: true))
        {
            while (pending is { Count: > 0 } && pending.Peek().FirstOffset <= batch.Header.LastOffset)
            {
                abortedProducers.Add(pending.Dequeue().ProducerId);
            }

            if (batch.Header.IsControlBatch)
            {
                if (abortedProducers.Count > 0 && IsAbortMarker(batch, buffer))
                {
                    abortedProducers.Remove(batch.Header.ProducerId);
                }

                continue;
            }

            if (batch.Header.LastOffset < fromOffset || (batch.Header.IsTransactional && abortedProducers.Contains(batch.Header.ProducerId)))
            {
                continue;
            }

            batch.EnsureValidCrc();
            foreach (var record in batch.GetRecords(buffer))
            {
                if (record.Offset < fromOffset)
                {
                    continue;
                }

                var headers = new List<KeyValuePair<string, byte[]?>>(record.HeaderCount);
                foreach (var header in record.Headers)
                {
                    headers.Add(new(header.GetKeyString(), header.IsValueNull ? null : header.Value.ToArray()));
                }

                result.Add(new ConsumedRecord(
                    topic,
                    partition,
                    record.Offset,
                    record.Timestamp,
                    batch.Header.TimestampType,
                    record.IsKeyNull ? null : record.Key.ToArray(),
                    record.IsValueNull ? null : record.Value.ToArray(),
                    headers));
            }
        }

        return result;
    }

    /// <summary>
    /// The offset after the last whole batch in <paramref name="batches"/>: where the next fetch starts, also past
    /// control batches and aborted transactions that gave no records (read_committed would otherwise fetch them again).
    /// </summary>
    public static long NextOffsetAfter(ReadOnlySpan<byte> batches)
    {
        var next = -1L;
        foreach (var batch in RecordBatch.Enumerate(batches, allowTrailingPartialBatch: true))
        {
            next = batch.Header.NextOffset;
        }

        return next;
    }

    private static bool IsAbortMarker(RecordBatch batch, PooledBufferWriter buffer)
    {
        foreach (var record in batch.GetRecords(buffer))
        {
            return !record.IsKeyNull && ControlRecords.ParseKey(record.Key).Type == ControlRecordType.Abort;
        }

        return false;
    }
}
