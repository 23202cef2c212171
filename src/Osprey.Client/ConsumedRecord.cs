using Osprey.Protocol.Records;

namespace Osprey.Client;

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
    /// <summary>The data records of fetched batches at or after <paramref name="fromOffset"/> (control batches skipped).</summary>
    public static List<ConsumedRecord> FromBatches(string topic, int partition, ReadOnlySpan<byte> batches, long fromOffset)
    {
        var result = new List<ConsumedRecord>();
        using var buffer = new PooledBufferWriter(0);
        foreach (var batch in RecordBatch.Enumerate(batches, allowTrailingPartialBatch: true))
        {
            if (batch.Header.IsControlBatch || batch.Header.LastOffset < fromOffset)
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
}
