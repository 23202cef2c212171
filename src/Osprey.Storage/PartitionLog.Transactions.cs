using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage;

/// <summary>
/// Transactions on the log: the last stable offset (below the first offset of any transaction still open) and
/// the aborted-transaction index that read_committed fetches consult.
/// </summary>
public sealed partial class PartitionLog
{
    private long _firstUnstableOffset = -1;

    /// <summary>
    /// The last stable offset: the first offset of the oldest open transaction, or the log end offset when none is
    /// open. read_committed consumers read only below it.
    /// </summary>
    public long LastStableOffset
    {
        get
        {
            var end = LogEndOffset;
            var unstable = Interlocked.Read(ref _firstUnstableOffset);
            return unstable >= 0 ? Math.Min(unstable, end) : end;
        }
    }

    /// <summary>
    /// The aborted transactions that touch [<paramref name="fromOffset"/>, <paramref name="upToOffset"/>): those
    /// whose first offset is below the bound and whose ABORT marker is at or after the start, oldest first.
    /// </summary>
    public List<AbortedTransaction> AbortedTransactions(long fromOffset, long upToOffset)
    {
        var result = new List<AbortedTransaction>();
        foreach (var segment in _segments.Where(s => s.NextOffset > fromOffset))
        {
            result.AddRange(segment.TxnIndex.Entries.Where(e => e.LastOffset >= fromOffset && e.FirstOffset < upToOffset));
        }

        return result;
    }

    /// <summary>
    /// Whether <paramref name="producerId"/> has a transaction open in this partition at <paramref name="epoch"/> (its
    /// first write here was verified against its coordinator, and no marker has ended it since).
    /// </summary>
    public bool HasOpenTransaction(long producerId, short epoch)
    {
        lock (_lock)
        {
            return _producers.Get(producerId) is { CurrentTxnFirstOffset: >= 0 } producer && producer.Epoch == epoch;
        }
    }

    /// <summary>The open transactions' producers and first offsets (for DescribeProducers and hanging-transaction checks).</summary>
    public List<(long ProducerId, short Epoch, long FirstOffset)> OpenTransactions()
    {
        lock (_lock)
        {
            return [.. _producers.Producers.Where(p => p.CurrentTxnFirstOffset >= 0).Select(p => (p.ProducerId, p.Epoch, p.CurrentTxnFirstOffset))];
        }
    }

    /// <summary>Records an ABORT marker in its segment's index: the producer's transaction from its first offset to the marker.</summary>
    private void IndexAbortedTransaction(LogSegment segment, in RecordBatchHeader marker)
    {
        var first = _producers.Get(marker.ProducerId)?.CurrentTxnFirstOffset ?? -1;
        if (first < 0)
        {
            return; // nothing of the transaction reached this partition
        }

        var others = _producers.FirstUnstableOffset(except: marker.ProducerId);
        var lastStable = others >= 0 ? others : marker.NextOffset;
        segment.TxnIndex.Append(new AbortedTransaction(marker.ProducerId, first, marker.BaseOffset, lastStable));
    }

    private void RefreshFirstUnstableOffset() => Interlocked.Exchange(ref _firstUnstableOffset, _producers.FirstUnstableOffset());

    /// <summary>Whether a control batch is a COMMIT or an ABORT (null for other control records).</summary>
    private static ControlRecordType? MarkerType(RecordBatch batch)
    {
        foreach (var record in batch.GetRecords())
        {
            var type = ControlRecords.ParseKey(record).Type;
            return type is ControlRecordType.Abort or ControlRecordType.Commit ? type : null;
        }

        return null;
    }

    private static ControlRecordType? ReadMarkerType(LogSegment segment, in RecordBatchHeader header)
    {
        try
        {
            if (segment.Read(header.BaseOffset, header.TotalSize, segment.Size, long.MaxValue, minOneBatch: true) is not { } region)
            {
                return null;
            }

            return MarkerType(RecordBatch.Parse(region.ToArray()));
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }
}
