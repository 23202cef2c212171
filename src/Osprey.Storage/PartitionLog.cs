using System.Buffers;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage;

/// <summary>
/// Who is appending: clients get full validation; the transaction coordinator's markers (control batches) get
/// offsets assigned like client batches; replication and the cleaner write batches as they are.
/// </summary>
public enum AppendOrigin
{
    Client,
    Replication,
    Coordinator,
}

/// <summary>What an append produced.</summary>
public readonly record struct AppendResult(
    long FirstOffset,
    long LastOffset,
    long LogAppendTime,
    long MaxTimestamp,
    long OffsetOfMaxTimestamp,
    int RecordCount,
    int Bytes,
    long LogStartOffset)
{
    /// <summary>True when the batch was a retry of one already in the log; the offsets are the original ones.</summary>
    public bool Duplicate { get; init; }
}

/// <summary>What a read found: whole batches from one segment (or none), and the log's offsets at the time.</summary>
public readonly record struct ReadResult(FileRegion? Region, long LogStartOffset, long LogEndOffset)
{
    public int Length => Region?.Length ?? 0;
}

/// <summary>
/// A topic partition's append-only log: segments in <c>&lt;topic&gt;-&lt;partition&gt;</c>, offsets assigned on append,
/// reads by offset and timestamp, durability by flushing up to an offset, and the recovery point that says how
/// much is known to be on disk. Appends are serialized; reads run concurrently against a snapshot of segments.
/// </summary>
public sealed partial class PartitionLog : IDisposable
{
    private readonly Lock _lock = new();
    private readonly ProducerStateManager _producers = new();
    private readonly TimeProvider _time;
    private volatile LogSegment[] _segments;
    private long _logStartOffset;
    private long _recoveryPoint;

    /// <summary>Writes appended bytes to the active segment; null is the file system itself (tests put a faulty disk here).</summary>
    internal SegmentWriter? Writer { get; set; }

    /// <summary>Makes segment files durable; null is fsync itself (tests put a simulated disk here, to lose what it did not cover).</summary>
    internal SegmentSyncer? Syncer { get; set; }

    /// <summary>Where this log reports disk errors and their end.</summary>
    internal Microsoft.Extensions.Logging.ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    // Appends refused by the disk since the last one that succeeded: the first failure and the recovery are logged.
    private long _failedAppends;

    // Set when a failed append left bytes past the segment's end that could not be cut back: the tail is then not
    // what the log counts, so a close must not be taken as clean.
    private bool _tailUnverified;
    private long _unflushedMessages;
    private long _firstUnflushedAppendMs = -1;
    private bool _disposed;

    private PartitionLog(string directory, string topic, int partition, LogConfig config, TimeProvider time, LogSegment[] segments, long logStartOffset, long recoveryPoint)
    {
        Directory = directory;
        Topic = topic;
        Partition = partition;
        Config = config;
        _time = time;
        _segments = segments;
        _logStartOffset = logStartOffset;
        _recoveryPoint = recoveryPoint;
        LeaderEpochs = new LeaderEpochCache(directory);
    }

    public string Directory { get; }

    public string Topic { get; }

    public int Partition { get; }

    public LogConfig Config { get; set; }

    public LeaderEpochCache LeaderEpochs { get; }

    /// <summary>Keeps the open files of this log's inactive segments within the broker's budget.</summary>
    internal SegmentHandleCache Handles { get; init; } = SegmentHandleCache.Default;

    /// <summary>Starts the write-out of appended bytes early (set by the <see cref="LogManager"/>).</summary>
    internal LogWriteback? Writeback { get; set; }

    public long LogStartOffset => Interlocked.Read(ref _logStartOffset);

    /// <summary>The offset the next appended record gets.</summary>
    public long LogEndOffset => _segments[^1].NextOffset;

    /// <summary>Every offset below this is on disk (fsynced).</summary>
    public long RecoveryPoint => Interlocked.Read(ref _recoveryPoint);

    /// <summary>Bytes in all segments.</summary>
    public long Size => _segments.Sum(s => s.Size);

    public IReadOnlyList<LogSegment> Segments => _segments;

    public LogSegment ActiveSegment => _segments[^1];

    /// <summary>The partition directory name Kafka uses: topic-partition.</summary>
    public static string DirectoryName(string topic, int partition) => $"{topic}-{partition}";

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Appends one or more record batches. Client batches are validated (magic 2, CRC, size against
    /// max.message.bytes, record count) and get offsets assigned by rewriting their base offset; LogAppendTime
    /// topics also get their max timestamp rewritten. Throws <see cref="KafkaProtocolException"/> for bad batches
    /// (nothing is written) and <see cref="KafkaStorageException"/> when the disk fails (the log stays as it was).
    /// </summary>
    public AppendResult Append(ReadOnlySpan<byte> records, AppendOrigin origin = AppendOrigin.Client, int leaderEpoch = -1)
    {
        if (records.IsEmpty)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"{Topic}-{Partition}: an append needs at least one record batch.");
        }

        var buffer = ArrayPool<byte>.Shared.Rent(records.Length);
        try
        {
            var bytes = buffer.AsSpan(0, records.Length);
            records.CopyTo(bytes);
            return AppendInPlace(bytes, origin, leaderEpoch);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// <see cref="Append"/> without the copy, for a caller that owns <paramref name="records"/> and has no further
    /// use for them (a produce request's own frame buffer): base offsets and, on LogAppendTime topics, max
    /// timestamps are rewritten in place, also when the append then fails.
    /// </summary>
    public AppendResult AppendInPlace(Span<byte> records, AppendOrigin origin = AppendOrigin.Client, int leaderEpoch = -1)
    {
        if (records.IsEmpty)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"{Topic}-{Partition}: an append needs at least one record batch.");
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return AppendLocked(records, origin, leaderEpoch);
        }
    }

    private AppendResult AppendLocked(Span<byte> bytes, AppendOrigin origin, int leaderEpoch)
    {
        var now = NowMs;
        if (origin == AppendOrigin.Client && bytes.Length > Config.SegmentBytes)
        {
            throw new KafkaProtocolException(
                ErrorCode.RecordListTooLarge,
                $"{Topic}-{Partition}: {bytes.Length} bytes of record batches are more than segment.bytes ({Config.SegmentBytes}).");
        }

        var logAppendTime = Config.MessageTimestampType == TimestampType.LogAppendTime ? now : -1;
        Dictionary<long, (short Epoch, int LastSequence)>? pending = null;
        List<RecordBatchHeader>? producerBatches = null;
        Dictionary<long, ControlRecordType?>? markers = null;
        var transactional = false;
        List<(int Epoch, long BaseOffset)>? replicatedEpochs = null;
        var next = LogEndOffset;
        var first = -1L;
        var maxTimestamp = -1L;
        var offsetOfMax = -1L;
        var recordCount = 0;
        var position = 0;
        while (position < bytes.Length)
        {
            var batch = RecordBatch.Parse(bytes[position..]);
            var header = batch.Header;
            if (header.TotalSize > Config.MaxMessageBytes + RecordBatchHeader.LogOverhead)
            {
                throw new KafkaProtocolException(
                    ErrorCode.MessageTooLarge,
                    $"{Topic}-{Partition}: a record batch of {header.TotalSize} bytes is larger than max.message.bytes ({Config.MaxMessageBytes}).");
            }

            batch.EnsureValidCrc();
            if (origin == AppendOrigin.Client && header.IsControlBatch)
            {
                throw new KafkaProtocolException(ErrorCode.InvalidRecord, $"{Topic}-{Partition}: clients cannot write control batches.");
            }

            if (header.IsControlBatch && header.ProducerId != RecordBatchHeader.NoProducerId)
            {
                (markers ??= [])[header.ProducerId] = MarkerType(batch);
            }

            if (origin == AppendOrigin.Client && (header.RecordCount == 0 || header.LastOffsetDelta != header.RecordCount - 1))
            {
                throw new KafkaProtocolException(
                    ErrorCode.CorruptMessage,
                    $"{Topic}-{Partition}: a record batch declares {header.RecordCount} records but offset deltas up to {header.LastOffsetDelta}.");
            }

            if (origin == AppendOrigin.Client && Config.Compact && !header.IsControlBatch)
            {
                EnsureKeyed(batch);
            }

            if (origin == AppendOrigin.Client && logAppendTime < 0 && !header.IsControlBatch)
            {
                EnsureTimestampsInRange(batch, now);
            }

            if (header.ProducerId != RecordBatchHeader.NoProducerId)
            {
                if (origin == AppendOrigin.Client && header.BaseSequence != RecordBatchHeader.NoSequence)
                {
                    pending ??= [];
                    if (_producers.Check(header, pending, $"{Topic}-{Partition}") is { } duplicate)
                    {
                        if (position != 0 || header.TotalSize != bytes.Length)
                        {
                            throw new KafkaProtocolException(
                                ErrorCode.DuplicateSequenceNumber,
                                $"{Topic}-{Partition}: producer {header.ProducerId} sent sequences {header.BaseSequence}-{header.LastSequence} again among other batches.");
                        }

                        return new AppendResult(duplicate.FirstOffset, duplicate.LastOffset, logAppendTime >= 0 ? duplicate.Timestamp : -1, duplicate.Timestamp, duplicate.LastOffset, 0, 0, LogStartOffset) { Duplicate = true };
                    }

                    pending[header.ProducerId] = (header.ProducerEpoch, header.LastSequence);
                }
            }

            var span = bytes.Slice(position, header.TotalSize);
            if (origin != AppendOrigin.Replication)
            {
                RecordBatch.SetBaseOffset(span, next);
                if (leaderEpoch >= 0)
                {
                    RecordBatch.SetPartitionLeaderEpoch(span, leaderEpoch);
                }

                if (logAppendTime >= 0)
                {
                    RecordBatch.SetMaxTimestamp(span, TimestampType.LogAppendTime, logAppendTime);
                }

                header = RecordBatchHeader.Parse(span);
            }
            else if (header.BaseOffset < next)
            {
                throw new KafkaProtocolException(
                    ErrorCode.CorruptMessage,
                    $"{Topic}-{Partition}: batch base offset {header.BaseOffset} is below the log end offset {next}.");
            }
            else if (header.PartitionLeaderEpoch >= 0)
            {
                // A follower learns the leader's epochs from the batches it copies (KIP-101).
                (replicatedEpochs ??= []).Add((header.PartitionLeaderEpoch, header.BaseOffset));
            }

            if (header.ProducerId != RecordBatchHeader.NoProducerId)
            {
                (producerBatches ??= []).Add(header); // with its offsets, for the producer state once written
                transactional |= header.IsTransactional;
            }

            first = first < 0 ? header.BaseOffset : first;
            if (header.MaxTimestamp > maxTimestamp)
            {
                maxTimestamp = header.MaxTimestamp;
                offsetOfMax = header.BaseOffset;
            }

            recordCount += header.RecordCount;
            next = header.NextOffset;
            position += header.TotalSize;
        }

        var active = MaybeRoll(bytes.Length, next - 1, now);
        var sizeBefore = active.Size;
        try
        {
            active.Append(bytes, now, Writer);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RestoreAfterFailedWrite(active, sizeBefore);
            StorageMetrics.StorageError();
            if (_failedAppends++ == 0)
            {
                StorageEvents.AppendsFailing(Logger, Topic, Partition, e.Message);
            }

            throw KafkaStorageException.Io($"{Topic}-{Partition}: append failed", e);
        }

        if (_failedAppends > 0)
        {
            StorageEvents.AppendsRecovered(Logger, Topic, Partition, _failedAppends);
            _failedAppends = 0;
        }

        Writeback?.Appended(active);

        if (leaderEpoch >= 0)
        {
            LeaderEpochs.Assign(leaderEpoch, first);
        }

        foreach (var (epoch, baseOffset) in replicatedEpochs ?? [])
        {
            LeaderEpochs.Assign(epoch, baseOffset);
        }

        foreach (var written in producerBatches ?? [])
        {
            if (written.IsControlBatch && markers?.GetValueOrDefault(written.ProducerId) == ControlRecordType.Abort)
            {
                IndexAbortedTransaction(active, written);
            }

            _producers.Update(written, now);
        }

        if (transactional)
        {
            RefreshFirstUnstableOffset();
        }

        _unflushedMessages += recordCount;
        if (_firstUnflushedAppendMs < 0)
        {
            _firstUnflushedAppendMs = now;
        }

        return new AppendResult(first, next - 1, logAppendTime, logAppendTime >= 0 ? logAppendTime : maxTimestamp, offsetOfMax, recordCount, bytes.Length, LogStartOffset);
    }

    /// <summary>
    /// A CreateTime batch's timestamps must lie within message.timestamp.before.max.ms before now and
    /// message.timestamp.after.max.ms after it (INVALID_TIMESTAMP otherwise). The batch's max timestamp bounds the
    /// future; the past is checked record by record only when a bound is configured (the default allows any).
    /// </summary>
    private void EnsureTimestampsInRange(RecordBatch batch, long now)
    {
        var latest = now > long.MaxValue - Config.MessageTimestampAfterMaxMs ? long.MaxValue : now + Config.MessageTimestampAfterMaxMs;
        var earliest = Config.MessageTimestampBeforeMaxMs >= now ? long.MinValue : now - Config.MessageTimestampBeforeMaxMs;
        if (batch.Header.MaxTimestamp > latest)
        {
            throw InvalidTimestamp(batch.Header.MaxTimestamp, earliest, latest);
        }

        if (earliest == long.MinValue)
        {
            return;
        }

        using var decompressed = new PooledBufferWriter(0);
        foreach (var record in batch.GetRecords(decompressed))
        {
            if (record.Timestamp != RecordBatchHeader.NoTimestamp && (record.Timestamp < earliest || record.Timestamp > latest))
            {
                throw InvalidTimestamp(record.Timestamp, earliest, latest);
            }
        }
    }

    private KafkaProtocolException InvalidTimestamp(long timestamp, long earliest, long latest) => new(
        ErrorCode.InvalidTimestamp,
        $"{Topic}-{Partition}: timestamp {timestamp} is out of range; it must lie within [{(earliest == long.MinValue ? "-inf" : earliest.ToString(System.Globalization.CultureInfo.InvariantCulture))}, {latest}] " +
        "(message.timestamp.before.max.ms and message.timestamp.after.max.ms).");

    /// <summary>The producers this partition knows, copied (for DescribeProducers).</summary>
    public IReadOnlyList<ProducerEntry> ActiveProducers()
    {
        lock (_lock)
        {
            return [.. _producers.Producers];
        }
    }

    /// <summary>Forgets producers idle for <paramref name="expirationMs"/> (producer.id.expiration.ms).</summary>
    public int RemoveExpiredProducers(long expirationMs)
    {
        lock (_lock)
        {
            return _producers.RemoveExpired(NowMs, expirationMs);
        }
    }

    /// <summary>A compacted topic keeps the latest record per key, so (like Kafka) it refuses records without one.</summary>
    private void EnsureKeyed(RecordBatch batch)
    {
        using var decompressed = new PooledBufferWriter(0);
        foreach (var record in batch.GetRecords(decompressed))
        {
            if (record.IsKeyNull)
            {
                throw new KafkaProtocolException(
                    ErrorCode.InvalidRecord,
                    $"Compacted topic cannot accept message without key in topic partition {Topic}-{Partition}");
            }
        }
    }

    /// <summary>
    /// A write that failed part-way (a full disk) may have left some of its bytes past the segment's end: the file is
    /// cut back to exactly the length it had before. If even that fails, the log is marked so that its close does not
    /// count as clean, and the next start scans (and cuts) the tail instead of trusting it.
    /// </summary>
    private void RestoreAfterFailedWrite(LogSegment active, long sizeBefore)
    {
        try
        {
            active.TruncateToSize(sizeBefore);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Volatile.Write(ref _tailUnverified, true);
        }
    }

    /// <summary>Rolls to a new segment when the active one is full by size, age or index, or offsets would overflow.</summary>
    private LogSegment MaybeRoll(int incomingBytes, long lastOffset, long now)
    {
        var active = ActiveSegment;
        if (active.IsEmpty)
        {
            return active;
        }

        var full = active.Size + incomingBytes > Config.SegmentBytes
            || now - active.CreatedMs >= Config.MaxSegmentMs
            || active.OffsetIndex.IsFull
            || active.TimeIndex.IsFull
            || lastOffset - active.BaseOffset > int.MaxValue;
        return full ? RollLocked(now) : active;
    }

    /// <summary>Starts a new active segment at the log end offset.</summary>
    public LogSegment Roll()
    {
        lock (_lock)
        {
            return ActiveSegment.IsEmpty ? ActiveSegment : RollLocked(NowMs);
        }
    }

    private LogSegment RollLocked(long now)
    {
        var old = ActiveSegment;
        old.OnBecomeInactive();
        try
        {
            var segment = LogSegment.Create(Directory, old.NextOffset, Config, now, handles: Handles);
            _segments = [.. _segments, segment];
            Writeback?.Enqueue(old);
            _producers.WriteSnapshot(Directory, segment.BaseOffset);

            // The new file's name must survive a crash as surely as the data later fsynced into it.
            NativeFileSystem.SyncDirectory(Directory);
            return segment;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaStorageException)
        {
            // When the new segment never made it, the old one stays the active one, open for the appends that follow.
            if (ReferenceEquals(_segments[^1], old))
            {
                old.SetActive(true);
            }

            throw e as KafkaStorageException ?? KafkaStorageException.Io($"{Topic}-{Partition}: cannot create a segment at {old.NextOffset}", e);
        }
    }

    /// <summary>
    /// Fsyncs every segment holding offsets below <paramref name="upToOffset"/> that is not yet known to be on
    /// disk, then advances the recovery point. Appends continue while the fsync runs.
    /// </summary>
    public void Flush(long upToOffset)
    {
        LogSegment[] segments;
        long target;
        lock (_lock)
        {
            target = Math.Min(upToOffset, LogEndOffset);
            if (target <= RecoveryPoint)
            {
                return;
            }

            segments = _segments;
            _unflushedMessages = 0;
            _firstUnflushedAppendMs = -1;
        }

        var from = RecoveryPoint;
        try
        {
            foreach (var segment in segments)
            {
                if ((segment.NextOffset > from || segment.HasUnsyncedIndexes) && segment.BaseOffset < target)
                {
                    segment.Flush(Syncer);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            throw KafkaStorageException.Io($"{Topic}-{Partition}: flush failed", e);
        }

        MarkFlushed(target);
    }

    /// <summary>
    /// For a flush done by someone else (one syncfs for many logs): the offset that the flush will cover, taken
    /// before it starts. Every byte below the log end offset has been written to the file by then.
    /// </summary>
    internal long FlushTarget(long upToOffset)
    {
        lock (_lock)
        {
            _unflushedMessages = 0;
            _firstUnflushedAppendMs = -1;
            return Math.Min(upToOffset, LogEndOffset);
        }
    }

    /// <summary>Advances the recovery point after a flush that covered everything below <paramref name="target"/>.</summary>
    internal void MarkFlushed(long target)
    {
        long current;
        do
        {
            current = Interlocked.Read(ref _recoveryPoint);
        }
        while (current < target && Interlocked.CompareExchange(ref _recoveryPoint, target, current) != current);
    }

    /// <summary>True when flush.messages or flush.ms says this log should be flushed now.</summary>
    public bool FlushDue(long nowMs)
    {
        lock (_lock)
        {
            return _unflushedMessages >= Config.FlushMessages
                || (_firstUnflushedAppendMs >= 0 && nowMs - _firstUnflushedAppendMs >= Config.FlushMs);
        }
    }

    /// <summary>
    /// Whole batches from the one holding <paramref name="offset"/>, up to <paramref name="maxBytes"/> (at least one
    /// batch when <paramref name="minOneBatch"/>) and below <paramref name="maxOffset"/> (e.g. the high watermark).
    /// An offset below the log start or above the log end is OFFSET_OUT_OF_RANGE.
    /// </summary>
    public ReadResult Read(long offset, int maxBytes, long maxOffset = long.MaxValue, bool minOneBatch = true)
    {
        var segments = _segments;
        var logStart = LogStartOffset;
        var logEnd = segments[^1].NextOffset;
        if (offset < logStart || offset > logEnd)
        {
            throw new KafkaProtocolException(
                ErrorCode.OffsetOutOfRange,
                $"{Topic}-{Partition}: offset {offset} is outside the log ({logStart} to {logEnd}).");
        }

        for (var i = FindSegmentIndex(segments, offset); i < segments.Length; i++)
        {
            if (segments[i].BaseOffset >= maxOffset)
            {
                break;
            }

            try
            {
                var region = segments[i].Read(offset, maxBytes, long.MaxValue, maxOffset, minOneBatch);
                if (region is not null)
                {
                    return new ReadResult(region, logStart, logEnd);
                }
            }
            catch (ObjectDisposedException)
            {
                // The segment was deleted under us (retention); the next one holds what is left.
            }
        }

        return new ReadResult(null, logStart, logEnd);
    }

    /// <summary>Index of the last segment whose base offset is ≤ <paramref name="offset"/> (0 if none is).</summary>
    private static int FindSegmentIndex(LogSegment[] segments, long offset)
    {
        int lo = 0, hi = segments.Length - 1, found = 0;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (segments[mid].BaseOffset <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }

    /// <summary>Reads the batches of a region into memory (for callers that must have bytes).</summary>
    public static byte[] ReadBytes(ReadResult result) => result.Region?.ToArray() ?? [];

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var segment in _segments)
            {
                segment.Dispose();
            }
        }
    }
}
