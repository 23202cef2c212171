using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Osprey.Protocol.Records;

namespace Osprey.Storage;

public sealed partial class LogCleaner
{
    private const int OutputFlushBytes = 1 << 20;

    /// <summary>Cleans the log's cleanable range (see the class remarks); the caller holds the pass.</summary>
    private CleanResult CleanLog(PartitionLog log, CancellationToken cancellationToken)
    {
        var now = NowMs;
        var config = log.Config;
        var truncations = log.TruncationCount;
        var plan = Plan(log, log.Segments.ToArray(), now);
        var segments = plan.Segments;
        var stats = new CleanStats();
        if (plan.DirtyStart >= plan.CleanableEnd)
        {
            return stats.Result(log, plan.State.FirstDirtyOffset, plan.State.FirstDirtyOffset, completed: true);
        }

        // Like Kafka's last stable offset: nothing from the segment holding the first batch of a transaction that
        // has not ended is cleaned, so such data never enters the clean part without having been mapped.
        var transactions = ScanTransactions(segments, plan.CleanableEnd, cancellationToken);
        var cleanableEnd = plan.CleanableEnd;
        if (transactions.Open.Count > 0)
        {
            var firstOpen = transactions.Open.Min();
            while (cleanableEnd > 0 && segments[cleanableEnd].BaseOffset > firstOpen)
            {
                cleanableEnd--;
            }

            if (plan.DirtyStart >= cleanableEnd)
            {
                return stats.Result(log, plan.State.FirstDirtyOffset, plan.State.FirstDirtyOffset, completed: true);
            }
        }

        var map = new Dictionary<UInt128, long>();
        var mapEnd = BuildOffsetMap(segments, plan.DirtyStart, cleanableEnd, transactions, map, cancellationToken);
        var endOffset = segments[mapEnd].BaseOffset;
        using var filter = new BatchFilter(map, transactions, now, config.DeleteRetentionMs);
        foreach (var (start, end) in GroupSegments(segments, mapEnd, config))
        {
            var group = segments[start..end];
            if (!CleanGroup(log, config, group, segments[end].BaseOffset, truncations, filter, stats, now, cancellationToken))
            {
                return stats.Result(log, plan.State.FirstDirtyOffset, endOffset, completed: false);
            }
        }

        if (!log.AdvanceCleanerCheckpoint(endOffset, truncations))
        {
            return stats.Result(log, plan.State.FirstDirtyOffset, endOffset, completed: false);
        }

        try
        {
            Cleaned?.Invoke(log);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaStorageException)
        {
            // The checkpoint is in memory; the periodic checkpoint write tries again.
        }

        return stats.Result(log, plan.State.FirstDirtyOffset, endOffset, completed: true);
    }

    /// <summary>
    /// Rewrites one group of segments into one ".cleaned" segment and swaps it in. A single segment nothing is
    /// removed from is left as it is. False when the log changed under the cleaner and the swap was refused.
    /// </summary>
    private static bool CleanGroup(
        PartitionLog log,
        LogConfig config,
        LogSegment[] group,
        long covers,
        long truncations,
        BatchFilter filter,
        CleanStats stats,
        long now,
        CancellationToken cancellationToken)
    {
        var cleaned = LogSegment.Create(log.Directory, group[0].BaseOffset, config, now, LogSegment.CleanedSuffix, log.Handles);
        var committed = false;
        var mayDelete = true;
        try
        {
            // Merging segments is worth a rewrite even when no record goes.
            var changed = group.Length > 1;
            long written = 0;
            using var output = new PooledBufferWriter(64 * 1024);
            foreach (var segment in group)
            {
                using var reader = new SegmentBatchReader(segment);
                while (reader.TryRead(out var bytes))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    changed |= !filter.Apply(bytes, output, stats);
                    if (output.WrittenCount >= OutputFlushBytes)
                    {
                        cleaned.Append(output.WrittenSpan, now);
                        written += output.WrittenCount;
                        output.Clear();
                    }
                }
            }

            if (output.WrittenCount > 0)
            {
                cleaned.Append(output.WrittenSpan, now);
                written += output.WrittenCount;
            }

            if (!changed)
            {
                return true;
            }

            // The aborted transactions whose ABORT markers the cleaned segment keeps stay indexed.
            foreach (var segment in group)
            {
                foreach (var entry in segment.TxnIndex.Entries.Where(e => !filter.RemovedMarkers.Contains(e.LastOffset)))
                {
                    cleaned.TxnIndex.Append(entry);
                }
            }

            cleaned.OnBecomeInactive();
            cleaned.Flush();
            cleaned.FlushIndexes();
            cleaned.CreatedMs = group[^1].CreatedMs;
            cancellationToken.ThrowIfCancellationRequested();

            // From here a failure may be past the commit point: the files are left for the next open to finish.
            mayDelete = false;
            if (log.ReplaceSegments(group, cleaned, covers, truncations) != SegmentReplacement.Replaced)
            {
                mayDelete = true;
                return false;
            }

            committed = true;
            stats.SegmentsReplaced += group.Length;
            stats.SegmentsWritten++;
            stats.BytesWritten += written;
            return true;
        }
        finally
        {
            if (!committed)
            {
                cleaned.Dispose();
                if (mayDelete)
                {
                    DeleteQuietly(cleaned, LogSegment.CleanedSuffix);
                    DeleteQuietly(cleaned, LogSegment.SwapSuffix);
                    try
                    {
                        File.Delete(PartitionLog.SwapMarkerPath(log.Directory, cleaned.BaseOffset));
                    }
                    catch (IOException)
                    {
                        // Removed at the next open.
                    }
                }
            }
        }
    }

    private static void DeleteQuietly(LogSegment segment, string suffix)
    {
        try
        {
            segment.DeleteFiles(suffix);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover .cleaned or index .swap file is removed at the next open.
        }
    }

    /// <summary>
    /// Consecutive segments (of the first <paramref name="count"/>) that fit together in one segment: within
    /// segment.bytes, within the index size, and with every offset within int32 of the group's base offset. The
    /// offset bound uses the next segment's base offset, so it holds whatever gaps there are.
    /// </summary>
    private static List<(int Start, int End)> GroupSegments(LogSegment[] segments, int count, LogConfig config)
    {
        var groups = new List<(int, int)>();
        var interval = Math.Max(1, config.IndexIntervalBytes);
        var maxIndexEntries = config.SegmentIndexBytes / Math.Max(OffsetIndex.EntrySize, TimeIndex.EntrySize);
        var start = 0;
        while (start < count)
        {
            var size = segments[start].Size;
            var end = start + 1;
            while (end < count)
            {
                var grown = size + segments[end].Size;
                if (grown > config.SegmentBytes
                    || (grown / interval) + 2 > maxIndexEntries
                    || segments[end + 1].BaseOffset - 1 - segments[start].BaseOffset > int.MaxValue)
                {
                    break;
                }

                size = grown;
                end++;
            }

            groups.Add((start, end));
            start = end;
        }

        return groups;
    }

    /// <summary>
    /// Maps every key in the dirty segments to its latest offset, segment by segment, stopping at a segment
    /// boundary once the map holds <see cref="LogCleanerOptions.MaxMapEntries"/>. Control batches and transactional
    /// data that is aborted or not yet ended are left out. Returns the index of the first segment not mapped.
    /// </summary>
    private int BuildOffsetMap(
        LogSegment[] segments,
        int dirtyStart,
        int cleanableEnd,
        TransactionScan transactions,
        Dictionary<UInt128, long> map,
        CancellationToken cancellationToken)
    {
        using var decompressed = new PooledBufferWriter();
        var i = dirtyStart;
        for (; i < cleanableEnd; i++)
        {
            if (i > dirtyStart && map.Count >= Options.MaxMapEntries)
            {
                break;
            }

            using var reader = new SegmentBatchReader(segments[i]);
            while (reader.TryRead(out var bytes))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = RecordBatch.Parse(bytes);
                var header = batch.Header;
                if (header.IsControlBatch || (header.IsTransactional && !transactions.IsCommitted(header.BaseOffset)))
                {
                    continue;
                }

                foreach (var record in batch.GetRecords(decompressed))
                {
                    if (!record.IsKeyNull)
                    {
                        map[KeyHash(record.Key)] = record.Offset;
                    }
                }
            }
        }

        return i;
    }

    /// <summary>
    /// Reads every batch header from the first segment to the log end: how each transaction with data in the
    /// cleanable range ended (the marker may lie past it), and each producer id's last data batch.
    /// </summary>
    private static TransactionScan ScanTransactions(LogSegment[] segments, int cleanableEnd, CancellationToken cancellationToken)
    {
        var scan = new TransactionScan();
        var pending = new Dictionary<long, List<long>>();
        Span<byte> headerBytes = stackalloc byte[RecordBatchHeader.Size];
        using var decompressed = new PooledBufferWriter(0);
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            var size = segment.Size;
            long position = 0;
            while (position < size && segment.ReadHeader(position, headerBytes) is { } header)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (header.ProducerId >= 0 && !header.IsControlBatch)
                {
                    scan.LastDataOffsets[header.ProducerId] = header.LastOffset;
                    if (header.IsTransactional && i < cleanableEnd)
                    {
                        if (!pending.TryGetValue(header.ProducerId, out var batches))
                        {
                            pending[header.ProducerId] = batches = [];
                        }

                        batches.Add(header.BaseOffset);
                    }
                }
                else if (header.ProducerId >= 0 && header.IsTransactional && pending.TryGetValue(header.ProducerId, out var open) && open.Count > 0)
                {
                    var type = MarkerType(segment, position, header, decompressed);
                    if (type is ControlRecordType.Abort or ControlRecordType.Commit)
                    {
                        if (type == ControlRecordType.Abort)
                        {
                            scan.Aborted.UnionWith(open);
                        }

                        open.Clear();
                    }
                }

                position += header.TotalSize;
            }
        }

        foreach (var open in pending.Values)
        {
            scan.Open.UnionWith(open);
        }

        return scan;
    }

    /// <summary>The type of the marker in a control batch, or null when it holds none.</summary>
    private static ControlRecordType? MarkerType(LogSegment segment, long position, RecordBatchHeader header, PooledBufferWriter decompressed)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(header.TotalSize);
        try
        {
            segment.ReadBytes(position, bytes.AsSpan(0, header.TotalSize));
            foreach (var record in RecordBatch.Parse(bytes.AsSpan(0, header.TotalSize)).GetRecords(decompressed))
            {
                return ControlRecords.ParseKey(record).Type;
            }

            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>Keys are mapped by a 128-bit hash, as Kafka maps them by MD5: a collision is not a practical concern.</summary>
    private static UInt128 KeyHash(ReadOnlySpan<byte> key)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(key, hash);
        return new UInt128(BinaryPrimitives.ReadUInt64LittleEndian(hash), BinaryPrimitives.ReadUInt64LittleEndian(hash[8..]));
    }

    /// <summary>How transactions with data in the cleanable range ended, and where each producer's data ends.</summary>
    private sealed class TransactionScan
    {
        /// <summary>Base offsets of the transactional data batches of aborted transactions.</summary>
        public HashSet<long> Aborted { get; } = [];

        /// <summary>Base offsets of the transactional data batches of transactions with no marker yet.</summary>
        public HashSet<long> Open { get; } = [];

        /// <summary>Producer id → the last offset of its last data batch in the log.</summary>
        public Dictionary<long, long> LastDataOffsets { get; } = [];

        public bool IsCommitted(long baseOffset) => !Aborted.Contains(baseOffset) && !Open.Contains(baseOffset);

        public bool IsLastBatchOfProducer(in RecordBatchHeader header) =>
            header.ProducerId >= 0 && LastDataOffsets.TryGetValue(header.ProducerId, out var last) && last == header.LastOffset;
    }

    /// <summary>Counters of one cleaning.</summary>
    private sealed class CleanStats
    {
        public int SegmentsReplaced { get; set; }

        public int SegmentsWritten { get; set; }

        public long BytesRead { get; set; }

        public long BytesWritten { get; set; }

        public long RecordsRead { get; set; }

        public long RecordsRetained { get; set; }

        public CleanResult Result(PartitionLog log, long firstDirty, long endOffset, bool completed) =>
            new(log, firstDirty, endOffset, SegmentsReplaced, SegmentsWritten, BytesRead, BytesWritten, RecordsRead, RecordsRetained, completed);
    }

    /// <summary>Decides, batch by batch, what a cleaning keeps, and writes it.</summary>
    private sealed class BatchFilter(Dictionary<UInt128, long> map, TransactionScan transactions, long now, long deleteRetentionMs) : IDisposable
    {
        private readonly PooledBufferWriter _decompressed = new();

        /// <summary>Producer ids with a batch of their current transaction seen in this pass (since their last marker).</summary>
        private readonly HashSet<long> _observed = [];
        private readonly RecordBatchBuilder _builder = new();
        private bool[] _keep = new bool[64];

        /// <summary>The offsets of the transaction markers this pass removed.</summary>
        public HashSet<long> RemovedMarkers { get; } = [];

        /// <summary>Writes what is kept of the batch to <paramref name="output"/>; true when that is the batch unchanged.</summary>
        public bool Apply(ReadOnlySpan<byte> bytes, PooledBufferWriter output, CleanStats stats)
        {
            var batch = RecordBatch.Parse(bytes);
            batch.EnsureValidCrc();
            var header = batch.Header;
            stats.BytesRead += bytes.Length;
            stats.RecordsRead += header.RecordCount;

            if (header.IsControlBatch)
            {
                return ApplyMarker(batch, bytes, output, stats);
            }

            if (header.IsTransactional && header.ProducerId >= 0)
            {
                _observed.Add(header.ProducerId);
            }

            // The data of transactions that have not ended is kept.
            if (header.IsTransactional && transactions.Open.Contains(header.BaseOffset))
            {
                stats.RecordsRetained += header.RecordCount;
                Write(output, bytes);
                return true;
            }

            if (header.RecordCount == 0)
            {
                // An empty batch kept earlier for its producer's sequence: kept while it still is the last one.
                if (transactions.IsLastBatchOfProducer(header))
                {
                    Write(output, bytes);
                    return true;
                }

                return false;
            }

            var aborted = header.IsTransactional && transactions.Aborted.Contains(header.BaseOffset);
            if (_keep.Length < header.RecordCount)
            {
                _keep = new bool[Math.Max(header.RecordCount, _keep.Length * 2)];
            }

            var retained = 0;
            var tombstones = false;
            var index = 0;
            ReadOnlySpan<byte> records = default;
            if (!aborted)
            {
                foreach (var record in batch.GetRecords(_decompressed))
                {
                    var keep = ShouldRetain(record, header);
                    _keep[index++] = keep;
                    if (keep)
                    {
                        retained++;
                        tombstones |= record.IsValueNull;
                    }
                }

                records = header.Compression == CompressionType.None ? batch.RecordsSection : _decompressed.WrittenSpan;
            }

            stats.RecordsRetained += retained;
            var needsHorizon = tombstones && !header.HasDeleteHorizonMs;
            if (retained == header.RecordCount && !needsHorizon)
            {
                Write(output, bytes);
                return true;
            }

            if (retained == 0)
            {
                if (transactions.IsLastBatchOfProducer(header))
                {
                    WriteEmpty(output, header);
                }

                return false;
            }

            _builder.ResetFor(header);
            _builder.Compression = header.Compression;
            _builder.LogAppendTime = header.TimestampType == TimestampType.LogAppendTime ? header.MaxTimestamp : null;
            _builder.DeleteHorizonMs = needsHorizon ? SaturatingAdd(now, deleteRetentionMs) : header.DeleteHorizonMs;
            _builder.LastOffsetDelta = header.LastOffsetDelta;
            index = 0;
            foreach (var record in new RecordEnumerator(records, header))
            {
                if (_keep[index++])
                {
                    _builder.Append(record);
                }
            }

            _builder.WriteTo(output);
            return false;
        }

        /// <summary>
        /// Kafka's rule for a transaction marker: it stays while any batch of its transaction is still in the log
        /// (seen in this pass, even one removed now), so that the transaction's end stays known. A pass that sees
        /// none stamps it with a delete horizon (now + delete.retention.ms), so that a consumer reading meanwhile
        /// still finds it; a pass after the horizon removes it, and with it its entry in the aborted-transaction
        /// index. Control batches of other kinds stay.
        /// </summary>
        private bool ApplyMarker(RecordBatch batch, ReadOnlySpan<byte> bytes, PooledBufferWriter output, CleanStats stats)
        {
            var header = batch.Header;
            var observed = header.ProducerId >= 0 && _observed.Remove(header.ProducerId);
            ControlRecordType? type = null;
            foreach (var record in batch.GetRecords(_decompressed))
            {
                type ??= ControlRecords.ParseKey(record).Type;
            }

            if (observed || type is not (ControlRecordType.Abort or ControlRecordType.Commit) || header.DeleteHorizonMs is { } horizon && now < horizon)
            {
                stats.RecordsRetained += header.RecordCount;
                Write(output, bytes);
                return true;
            }

            if (header.DeleteHorizonMs is not null)
            {
                RemovedMarkers.Add(header.BaseOffset);
                return false;
            }

            _builder.ResetFor(header);
            _builder.IsControlBatch = true;
            _builder.Compression = header.Compression;
            _builder.LogAppendTime = header.TimestampType == TimestampType.LogAppendTime ? header.MaxTimestamp : null;
            _builder.DeleteHorizonMs = SaturatingAdd(now, deleteRetentionMs);
            _builder.LastOffsetDelta = header.LastOffsetDelta;
            foreach (var record in batch.GetRecords(_decompressed))
            {
                _builder.Append(record);
            }

            _builder.WriteTo(output);
            stats.RecordsRetained += header.RecordCount;
            return false;
        }

        /// <summary>
        /// Kafka's rule: a record stays if it has a key, no later record in the map has that key, and it has a
        /// value or is a tombstone whose batch's delete horizon has not passed (or was not set yet).
        /// </summary>
        private bool ShouldRetain(in Record record, in RecordBatchHeader header)
        {
            if (record.IsKeyNull)
            {
                return false;
            }

            if (map.TryGetValue(KeyHash(record.Key), out var latest) && record.Offset < latest)
            {
                return false;
            }

            return !record.IsValueNull || header.DeleteHorizonMs is not { } horizon || now < horizon;
        }

        private static void Write(PooledBufferWriter output, ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(output.GetSpan(bytes.Length));
            output.Advance(bytes.Length);
        }

        /// <summary>A batch with no records that keeps the original's offsets, producer and sequence.</summary>
        private static void WriteEmpty(PooledBufferWriter output, in RecordBatchHeader header)
        {
            var empty = new RecordBatchHeader
            {
                BaseOffset = header.BaseOffset,
                BatchLength = RecordBatchHeader.MinBatchLength,
                PartitionLeaderEpoch = header.PartitionLeaderEpoch,
                Attributes = RecordBatchHeader.ComposeAttributes(CompressionType.None, header.TimestampType, header.IsTransactional),
                LastOffsetDelta = header.LastOffsetDelta,
                BaseTimestamp = header.MaxTimestamp,
                MaxTimestamp = header.MaxTimestamp,
                ProducerId = header.ProducerId,
                ProducerEpoch = header.ProducerEpoch,
                BaseSequence = header.BaseSequence,
                RecordCount = 0,
            };
            var span = output.GetSpan(RecordBatchHeader.Size)[..RecordBatchHeader.Size];
            empty.WriteTo(span);
            RecordBatch.UpdateCrc(span);
            output.Advance(RecordBatchHeader.Size);
        }

        private static long SaturatingAdd(long a, long b) => b > 0 && a > long.MaxValue - b ? long.MaxValue : a + b;

        public void Dispose()
        {
            _decompressed.Dispose();
            _builder.Dispose();
        }
    }

    /// <summary>Reads a segment's batches in order through a large buffer, as it was when the reader started.</summary>
    private sealed class SegmentBatchReader : IDisposable
    {
        private readonly LogSegment _segment;
        private readonly long _end;
        private byte[] _buffer;
        private long _bufferStart;
        private int _bufferLength;
        private long _position;

        public SegmentBatchReader(LogSegment segment)
        {
            _segment = segment;
            _end = segment.Size;
            _buffer = ArrayPool<byte>.Shared.Rent((int)Math.Clamp(_end, RecordBatchHeader.Size, 1 << 20));
        }

        /// <summary>The next whole batch; its bytes are valid until the next call.</summary>
        public bool TryRead(out ReadOnlySpan<byte> batch)
        {
            batch = default;
            if (_position >= _end)
            {
                return false;
            }

            Ensure(RecordBatchHeader.LogOverhead);
            var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan((int)(_position - _bufferStart) + 8));
            var total = (long)length + RecordBatchHeader.LogOverhead;
            if (length < RecordBatchHeader.MinBatchLength || _position + total > _end)
            {
                throw new InvalidDataException($"{_segment.LogPath}: a batch at position {_position} declares {length} bytes, past the end of the segment.");
            }

            Ensure((int)total);
            batch = _buffer.AsSpan((int)(_position - _bufferStart), (int)total);
            _position += total;
            return true;
        }

        /// <summary>Makes the <paramref name="count"/> bytes at the position available in the buffer.</summary>
        private void Ensure(int count)
        {
            if (_position + count <= _bufferStart + _bufferLength)
            {
                return;
            }

            if (count > _buffer.Length)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = ArrayPool<byte>.Shared.Rent(count);
            }

            _bufferStart = _position;
            _bufferLength = (int)Math.Min(_buffer.Length, _end - _position);
            _segment.ReadBytes(_position, _buffer.AsSpan(0, _bufferLength));
        }

        public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);
    }
}
