using System.Buffers.Binary;
using System.Globalization;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage;

/// <summary>One batch an idempotent producer wrote: its sequence range and where it landed.</summary>
public readonly record struct ProducerBatch(int FirstSequence, int LastSequence, long FirstOffset, long LastOffset, long Timestamp);

/// <summary>What a partition knows of one producer: its epoch and its most recent batches (newest last).</summary>
public sealed class ProducerEntry(long producerId, short epoch)
{
    /// <summary>How many recent batches are remembered for duplicate detection (the producer's max in-flight).</summary>
    public const int CachedBatches = 5;

    public long ProducerId { get; } = producerId;

    public short Epoch { get; internal set; } = epoch;

    public List<ProducerBatch> Batches { get; } = [];

    /// <summary>When the producer last wrote (broker clock, ms): what expiration is measured from.</summary>
    public long LastTimestamp { get; internal set; } = -1;

    public int CoordinatorEpoch { get; internal set; } = -1;

    /// <summary>The first offset of the producer's open transaction, or -1.</summary>
    public long CurrentTxnFirstOffset { get; internal set; } = -1;

    public int LastSequence => Batches.Count == 0 ? RecordBatchHeader.NoSequence : Batches[^1].LastSequence;

    public long LastOffset => Batches.Count == 0 ? -1 : Batches[^1].LastOffset;

    internal void Add(ProducerBatch batch)
    {
        if (Batches.Count == CachedBatches)
        {
            Batches.RemoveAt(0);
        }

        Batches.Add(batch);
    }
}

/// <summary>
/// The idempotent producers of one partition: for each, its epoch and last few batches, so a retried batch is
/// answered with its original offsets and a gap in sequence numbers is refused. Built from the newest snapshot
/// (<c>&lt;20-digit offset&gt;.snapshot</c>, Kafka's layout: version, CRC-32C, then one entry per producer) plus the
/// batch headers after it, and snapshotted at every segment roll and clean close. Not thread-safe: the log's
/// append lock guards it.
/// </summary>
public sealed class ProducerStateManager
{
    public const string SnapshotSuffix = ".snapshot";
    private const short SnapshotVersion = 1;
    private const int EntrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
    private const int SnapshotsKept = 3;

    private readonly Dictionary<long, ProducerEntry> _producers = [];

    public IReadOnlyCollection<ProducerEntry> Producers => _producers.Values;

    public ProducerEntry? Get(long producerId) => _producers.GetValueOrDefault(producerId);

    /// <summary>
    /// Checks a client batch against the producer's state (and the earlier batches of the same append in
    /// <paramref name="pending"/>): a batch it already wrote returns that batch; an older epoch is
    /// INVALID_PRODUCER_EPOCH; a new epoch must start at sequence 0 and the same epoch must continue the sequence,
    /// else OUT_OF_ORDER_SEQUENCE_NUMBER. A producer the partition has no state for may start anywhere.
    /// </summary>
    public ProducerBatch? Check(in RecordBatchHeader header, Dictionary<long, (short Epoch, int LastSequence)> pending, string partition)
    {
        var known = _producers.TryGetValue(header.ProducerId, out var entry);
        if (pending.TryGetValue(header.ProducerId, out var inThisAppend))
        {
            return CheckSequence(header, inThisAppend.Epoch, inThisAppend.LastSequence, partition);
        }

        if (!known)
        {
            return null;
        }

        if (header.ProducerEpoch == entry!.Epoch)
        {
            foreach (var batch in entry.Batches)
            {
                if (batch.FirstSequence == header.BaseSequence && batch.LastSequence == header.LastSequence)
                {
                    return batch;
                }
            }
        }

        return CheckSequence(header, entry.Epoch, entry.LastSequence, partition);
    }

    private static ProducerBatch? CheckSequence(in RecordBatchHeader header, short epoch, int lastSequence, string partition)
    {
        if (header.ProducerEpoch < epoch)
        {
            throw new KafkaProtocolException(
                ErrorCode.InvalidProducerEpoch,
                $"{partition}: producer {header.ProducerId} wrote with epoch {header.ProducerEpoch}, older than its current epoch {epoch}.");
        }

        if (header.ProducerEpoch > epoch)
        {
            if (header.BaseSequence != 0)
            {
                throw new KafkaProtocolException(
                    ErrorCode.OutOfOrderSequenceNumber,
                    $"{partition}: producer {header.ProducerId} starts epoch {header.ProducerEpoch} at sequence {header.BaseSequence}, not 0.");
            }

            return null;
        }

        var expected = lastSequence == int.MaxValue ? 0 : lastSequence + 1;
        if (lastSequence != RecordBatchHeader.NoSequence && header.BaseSequence != expected)
        {
            throw new KafkaProtocolException(
                ErrorCode.OutOfOrderSequenceNumber,
                $"{partition}: producer {header.ProducerId} sent sequence {header.BaseSequence}, expected {expected} (epoch {epoch}).");
        }

        return null;
    }

    /// <summary>Records a batch that is now in the log (its offsets assigned).</summary>
    public void Update(in RecordBatchHeader header, long nowMs)
    {
        if (header.ProducerId == RecordBatchHeader.NoProducerId)
        {
            return;
        }

        if (!_producers.TryGetValue(header.ProducerId, out var entry))
        {
            entry = new ProducerEntry(header.ProducerId, header.ProducerEpoch);
            _producers[header.ProducerId] = entry;
        }

        if (header.ProducerEpoch > entry.Epoch)
        {
            entry.Epoch = header.ProducerEpoch;
            entry.Batches.Clear();
        }

        entry.LastTimestamp = nowMs;
        if (header.IsControlBatch)
        {
            entry.CurrentTxnFirstOffset = -1;
            return;
        }

        if (header.IsTransactional && entry.CurrentTxnFirstOffset < 0)
        {
            entry.CurrentTxnFirstOffset = header.BaseOffset;
        }

        if (header.BaseSequence != RecordBatchHeader.NoSequence)
        {
            entry.Add(new ProducerBatch(header.BaseSequence, header.LastSequence, header.BaseOffset, header.LastOffset, header.MaxTimestamp));
        }
    }

    /// <summary>The first offset of the oldest open transaction (other than <paramref name="except"/>'s), or -1.</summary>
    public long FirstUnstableOffset(long except = RecordBatchHeader.NoProducerId)
    {
        var first = -1L;
        foreach (var producer in _producers.Values)
        {
            if (producer.CurrentTxnFirstOffset >= 0 && producer.ProducerId != except && (first < 0 || producer.CurrentTxnFirstOffset < first))
            {
                first = producer.CurrentTxnFirstOffset;
            }
        }

        return first;
    }

    /// <summary>Forgets producers that have not written for <paramref name="expirationMs"/> and have no open transaction.</summary>
    public int RemoveExpired(long nowMs, long expirationMs)
    {
        var expired = _producers.Values.Where(p => p.CurrentTxnFirstOffset < 0 && nowMs - p.LastTimestamp >= expirationMs).Select(p => p.ProducerId).ToList();
        foreach (var id in expired)
        {
            _producers.Remove(id);
        }

        return expired.Count;
    }

    /// <summary>Forgets producers whose every batch lies below the log start offset.</summary>
    public void RemoveBefore(long logStartOffset)
    {
        foreach (var id in _producers.Values.Where(p => p.LastOffset >= 0 && p.LastOffset < logStartOffset && p.CurrentTxnFirstOffset < 0).Select(p => p.ProducerId).ToList())
        {
            _producers.Remove(id);
        }
    }

    public void Clear() => _producers.Clear();

    public static string SnapshotPath(string directory, long offset) =>
        Path.Combine(directory, offset.ToString("D20", CultureInfo.InvariantCulture) + SnapshotSuffix);

    /// <summary>The offsets of the snapshot files in <paramref name="directory"/>, ascending.</summary>
    public static List<long> SnapshotOffsets(string directory) =>
        [.. System.IO.Directory.GetFiles(directory, "*" + SnapshotSuffix)
            .Select(f => Path.GetFileName(f)[..^SnapshotSuffix.Length])
            .Select(n => long.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var o) ? o : -1)
            .Where(o => o >= 0)
            .Order()];

    /// <summary>
    /// Writes the state as of <paramref name="offset"/> (everything below it applied). Written to a temporary file
    /// and renamed; the CRC catches a file a crash left half-written. Keeps only the newest few snapshots.
    /// </summary>
    public void WriteSnapshot(string directory, long offset)
    {
        var bytes = new byte[2 + 4 + 4 + (_producers.Count * EntrySize)];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(span, SnapshotVersion);
        BinaryPrimitives.WriteInt32BigEndian(span[6..], _producers.Count);
        var position = 10;
        foreach (var entry in _producers.Values)
        {
            var last = entry.Batches.Count == 0 ? new ProducerBatch(RecordBatchHeader.NoSequence, RecordBatchHeader.NoSequence, -1, -1, -1) : entry.Batches[^1];
            var e = span.Slice(position, EntrySize);
            BinaryPrimitives.WriteInt64BigEndian(e, entry.ProducerId);
            BinaryPrimitives.WriteInt16BigEndian(e[8..], entry.Epoch);
            BinaryPrimitives.WriteInt32BigEndian(e[10..], last.LastSequence);
            BinaryPrimitives.WriteInt64BigEndian(e[14..], last.LastOffset);
            BinaryPrimitives.WriteInt32BigEndian(e[22..], (int)(last.LastOffset - last.FirstOffset));
            BinaryPrimitives.WriteInt64BigEndian(e[26..], entry.LastTimestamp);
            BinaryPrimitives.WriteInt32BigEndian(e[34..], entry.CoordinatorEpoch);
            BinaryPrimitives.WriteInt64BigEndian(e[38..], entry.CurrentTxnFirstOffset);
            position += EntrySize;
        }

        BinaryPrimitives.WriteUInt32BigEndian(span[2..], Crc32C.Compute(span[6..]));
        var path = SnapshotPath(directory, offset);
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
        foreach (var old in SnapshotOffsets(directory).SkipLast(SnapshotsKept))
        {
            File.Delete(SnapshotPath(directory, old));
        }
    }

    /// <summary>
    /// Loads the newest readable snapshot at or below <paramref name="maxOffset"/>, deleting newer ones (they
    /// describe data a crash lost). Returns the snapshot's offset, or -1 when there is none (state empty).
    /// </summary>
    public long LoadSnapshot(string directory, long maxOffset)
    {
        _producers.Clear();
        var offsets = SnapshotOffsets(directory);
        foreach (var stale in offsets.Where(o => o > maxOffset))
        {
            File.Delete(SnapshotPath(directory, stale));
        }

        foreach (var offset in offsets.Where(o => o <= maxOffset).Reverse())
        {
            if (TryRead(File.ReadAllBytes(SnapshotPath(directory, offset))))
            {
                return offset;
            }

            _producers.Clear();
            File.Delete(SnapshotPath(directory, offset));
        }

        return -1;
    }

    private bool TryRead(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 10 || BinaryPrimitives.ReadInt16BigEndian(bytes) != SnapshotVersion
            || BinaryPrimitives.ReadUInt32BigEndian(bytes[2..]) != Crc32C.Compute(bytes[6..]))
        {
            return false;
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(bytes[6..]);
        if (count < 0 || bytes.Length != 10 + ((long)count * EntrySize))
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            var e = bytes.Slice(10 + (i * EntrySize), EntrySize);
            var entry = new ProducerEntry(BinaryPrimitives.ReadInt64BigEndian(e), BinaryPrimitives.ReadInt16BigEndian(e[8..]))
            {
                LastTimestamp = BinaryPrimitives.ReadInt64BigEndian(e[26..]),
                CoordinatorEpoch = BinaryPrimitives.ReadInt32BigEndian(e[34..]),
                CurrentTxnFirstOffset = BinaryPrimitives.ReadInt64BigEndian(e[38..]),
            };
            var lastSequence = BinaryPrimitives.ReadInt32BigEndian(e[10..]);
            var lastOffset = BinaryPrimitives.ReadInt64BigEndian(e[14..]);
            var delta = BinaryPrimitives.ReadInt32BigEndian(e[22..]);
            if (lastSequence != RecordBatchHeader.NoSequence)
            {
                var firstSequence = lastSequence >= delta ? lastSequence - delta : int.MaxValue - (delta - lastSequence - 1);
                entry.Add(new ProducerBatch(firstSequence, lastSequence, lastOffset - delta, lastOffset, -1));
            }

            _producers[entry.ProducerId] = entry;
        }

        return true;
    }
}
