using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Osprey.Protocol.Records;

namespace Osprey.Storage;

public sealed partial class PartitionLog
{
    /// <summary>
    /// Opens (or creates) the log in <paramref name="directory"/>. After a clean shutdown the indexes are trusted;
    /// otherwise every segment from the one holding <paramref name="recoveryPoint"/> on is scanned, the log is cut
    /// at the first torn or corrupt batch, later segments are removed, and the indexes are rebuilt.
    /// </summary>
    public static PartitionLog Open(
        string directory,
        string topic,
        int partition,
        LogConfig config,
        TimeProvider time,
        long recoveryPoint = 0,
        long logStartOffset = 0,
        bool cleanShutdown = false,
        ILogger? logger = null,
        SegmentHandleCache? handles = null)
    {
        logger ??= NullLogger.Instance;
        handles ??= SegmentHandleCache.Default;
        var started = Stopwatch.GetTimestamp();
        var scanned = 0;
        System.IO.Directory.CreateDirectory(directory);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var swapped = CompleteInterruptedOperations(directory);
        var baseOffsets = System.IO.Directory.GetFiles(directory, "*" + LogSegment.LogSuffix)
            .Select(Path.GetFileName)
            .Select(name => LogSegment.TryParseBaseOffset(name!, LogSegment.LogSuffix, out var b) ? b : -1)
            .Where(b => b >= 0)
            .Order()
            .ToList();

        var segments = new List<LogSegment>();
        try
        {
            var truncatedAt = -1;
            for (var i = 0; i < baseOffsets.Count; i++)
            {
                var baseOffset = baseOffsets[i];
                var nextBase = i + 1 < baseOffsets.Count ? baseOffsets[i + 1] : long.MaxValue;
                // A segment a cleaner swap put in place at this open has indexes of unknown state: rebuild them.
                var trust = (cleanShutdown || nextBase <= recoveryPoint) && !swapped.Contains(baseOffset);
                var segment = LogSegment.Open(directory, baseOffset, config, trust, now, recoveryPoint, out var recovery, handles);
                if (segments.Count > 0)
                {
                    segments[^1].SetActive(false); // its file may be closed now: a partition does not hold all its segments open
                }

                segments.Add(segment);
                if (recovery is null)
                {
                    continue;
                }

                scanned++;
                foreach (var (position, length, after) in recovery.Corrupt)
                {
                    StorageEvents.CorruptBatchKept(logger, topic, partition, length, position, segment.LogPath, after);
                    StorageMetrics.CorruptBatch();
                }

                if (recovery.TruncatedBytes > 0)
                {
                    StorageEvents.TornTailCut(logger, topic, partition, recovery.TruncatedBytes, recovery.TruncatedFromOffset, segment.LogPath);
                    StorageMetrics.Truncated(recovery.TruncatedBytes);
                    if (i + 1 < baseOffsets.Count)
                    {
                        truncatedAt = i;
                        break;
                    }
                }
            }

            if (truncatedAt >= 0)
            {
                // A hole past the recovery point in the middle of the log: what follows was not fsynced either and
                // cannot be trusted to be contiguous. (Damage below the recovery point never gets here: it is kept.)
                var later = baseOffsets.Skip(truncatedAt + 1).ToList();
                var bytes = later.Sum(b => new FileInfo(LogSegment.FilePath(directory, b, LogSegment.LogSuffix)).Length);
                foreach (var baseOffset in later)
                {
                    foreach (var suffix in new[] { LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix, LogSegment.TxnIndexSuffix })
                    {
                        File.Delete(LogSegment.FilePath(directory, baseOffset, suffix));
                    }
                }

                StorageEvents.LaterSegmentsRemoved(logger, topic, partition, later.Count, bytes, later[0]);
                StorageMetrics.Truncated(bytes);
            }

            // A log that is not compacted has no gaps: a segment that ends before the next one begins lost its tail
            // to the crash (the cut fell exactly between two batches, so nothing looked torn). What follows the hole
            // was not fsynced either (it is past the recovery point) and goes, as after a torn batch.
            if (!cleanShutdown && !config.Compact)
            {
                for (var i = 0; i + 1 < segments.Count; i++)
                {
                    if (segments[i].NextOffset < segments[i + 1].BaseOffset && segments[i].NextOffset >= recoveryPoint)
                    {
                        var later = segments.Skip(i + 1).ToList();
                        var bytes = later.Sum(segment => segment.Size);
                        foreach (var segment in later)
                        {
                            segment.Dispose();
                            segment.DeleteFiles("");
                        }

                        segments.RemoveRange(i + 1, later.Count);
                        StorageEvents.LaterSegmentsRemoved(logger, topic, partition, later.Count, bytes, later[0].BaseOffset);
                        StorageMetrics.Truncated(bytes);
                        break;
                    }
                }
            }

            // Drop empty segments other than the last, which stay behind after a crash during a roll.
            for (var i = segments.Count - 2; i >= 0; i--)
            {
                if (segments[i].IsEmpty && segments[i].NextOffset == segments[i + 1].BaseOffset)
                {
                    segments[i].Dispose();
                    segments[i].DeleteFiles("");
                    segments.RemoveAt(i);
                }
            }

            if (segments.Count == 0)
            {
                segments.Add(LogSegment.Create(directory, Math.Max(0, logStartOffset), config, now, handles: handles));
                NativeFileSystem.SyncDirectory(directory);
                NativeFileSystem.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(directory))!);
            }

            segments[^1].SetActive(true);
            var logEnd = segments[^1].NextOffset;
            var start = Math.Clamp(logStartOffset, segments[0].BaseOffset, logEnd);
            var log = new PartitionLog(directory, topic, partition, config, time, [.. segments], start, Math.Min(logEnd, cleanShutdown ? logEnd : recoveryPoint)) { Logger = logger, Handles = handles };
            log.LeaderEpochs.TruncateFromEnd(logEnd);
            log.LoadProducerState();
            if (scanned > 0)
            {
                StorageEvents.Recovered(logger, topic, partition, scanned, logEnd, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            return log;
        }
        catch (Exception e)
        {
            foreach (var segment in segments)
            {
                segment.Dispose();
            }

            if (e is IOException or UnauthorizedAccessException)
            {
                throw KafkaStorageException.Io($"{topic}-{partition}: cannot open the log in {directory}", e);
            }

            throw;
        }
    }

    /// <summary>
    /// Leftovers of operations a crash interrupted. ".deleted" files are gone for good; ".cleaned" files are an
    /// unfinished compaction whose originals are intact. A ".log.swap" file is a compaction that reached its
    /// commit point: the live segments it replaces (base offsets from its own up to the offset in its ".covers"
    /// marker) are removed and the swap files take the live names. Index ".swap" files and markers without a
    /// ".log.swap" are what is left of a swap that had already completed or never committed. Returns the base
    /// offsets of the segments swapped in, whose indexes must be rebuilt.
    /// </summary>
    private static HashSet<long> CompleteInterruptedOperations(string directory)
    {
        var files = System.IO.Directory.GetFiles(directory).Select(Path.GetFileName).OfType<string>().ToList();
        foreach (var name in files)
        {
            if (name.EndsWith(LogSegment.DeletedSuffix, StringComparison.Ordinal) || name.EndsWith(LogSegment.CleanedSuffix, StringComparison.Ordinal)
                || name.EndsWith(".tmp", StringComparison.Ordinal))
            {
                File.Delete(Path.Combine(directory, name));
            }
        }

        var swapBases = new SortedSet<long>();
        foreach (var name in files)
        {
            if (name.EndsWith(LogSegment.SwapSuffix, StringComparison.Ordinal)
                && LogSegment.TryParseBaseOffset(name[..^LogSegment.SwapSuffix.Length], LogSegment.LogSuffix, out var baseOffset))
            {
                swapBases.Add(baseOffset);
            }
        }

        foreach (var name in files)
        {
            var orphan = false;
            foreach (var suffix in new[] { LogSegment.IndexSuffix + LogSegment.SwapSuffix, LogSegment.TimeIndexSuffix + LogSegment.SwapSuffix, LogSegment.LogSuffix + LogSegment.SwapSuffix + LogSegment.CoversSuffix })
            {
                orphan |= LogSegment.TryParseBaseOffset(name, suffix, out var baseOffset) && !swapBases.Contains(baseOffset);
            }

            if (orphan)
            {
                File.Delete(Path.Combine(directory, name));
            }
        }

        string[] kinds = [LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix, LogSegment.TxnIndexSuffix, LogSegment.LogSuffix];
        foreach (var baseOffset in swapBases)
        {
            var swapLog = LogSegment.FilePath(directory, baseOffset, LogSegment.LogSuffix) + LogSegment.SwapSuffix;
            var covers = SwapCoverage(swapLog, baseOffset);
            foreach (var name in System.IO.Directory.GetFiles(directory).Select(Path.GetFileName).OfType<string>())
            {
                foreach (var kind in kinds)
                {
                    if (LogSegment.TryParseBaseOffset(name, kind, out var other) && other >= baseOffset && other < covers)
                    {
                        File.Delete(Path.Combine(directory, name));
                    }
                }
            }

            // The log last: until it moves, the swap is still pending.
            foreach (var kind in kinds)
            {
                var swap = LogSegment.FilePath(directory, baseOffset, kind) + LogSegment.SwapSuffix;
                if (File.Exists(swap))
                {
                    File.Move(swap, LogSegment.FilePath(directory, baseOffset, kind), overwrite: true);
                }
            }

            File.Delete(swapLog + LogSegment.CoversSuffix);
        }

        return [.. swapBases];
    }

    /// <summary>
    /// The first offset after the segments a swap file replaces, from the marker the cleaner writes before the
    /// swap commits. Without one, the swap covers the offsets its own batches span (as Kafka infers it).
    /// </summary>
    private static long SwapCoverage(string swapLog, long baseOffset)
    {
        var marker = swapLog + LogSegment.CoversSuffix;
        if (File.Exists(marker) && long.TryParse(File.ReadAllText(marker).Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var end)
            && end > baseOffset)
        {
            return end;
        }

        var next = baseOffset + 1;
        using var handle = File.OpenHandle(swapLog, FileMode.Open, FileAccess.Read);
        var length = RandomAccess.GetLength(handle);
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        long position = 0;
        while (position + RecordBatchHeader.Size <= length && RandomAccess.Read(handle, header, position) == RecordBatchHeader.Size)
        {
            var batchBase = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(header);
            var batchLength = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header[8..]);
            var lastOffsetDelta = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header[23..]);
            if (batchLength < RecordBatchHeader.MinBatchLength || lastOffsetDelta < 0)
            {
                break;
            }

            next = Math.Max(next, batchBase + lastOffsetDelta + 1);
            position += batchLength + (long)RecordBatchHeader.LogOverhead;
        }

        return next;
    }

    /// <summary>
    /// A clean close: flushes everything, records the final max timestamp of the active segment and flushes the
    /// indexes, so the next open can trust them. The files are closed whatever happens; the result says whether the
    /// close was clean. When it was not (the disk refused the flush, or a failed append left bytes it could not cut
    /// back), the recovery point stays where the data is known durable and this throws the failure; the next open
    /// then scans the tail rather than trusting it.
    /// </summary>
    public void Close()
    {
        if (!Close(out var failure))
        {
            throw failure ?? new KafkaStorageException(Protocol.ErrorCode.KafkaStorageError, $"{Topic}-{Partition}: closed with a tail that could not be verified.");
        }
    }

    /// <summary>Closes as <see cref="Close()"/> does, returning whether the close was clean instead of throwing.</summary>
    public bool Close(out Exception? failure)
    {
        failure = null;
        lock (_lock)
        {
            if (_disposed)
            {
                return true;
            }

            try
            {
                ActiveSegment.OnBecomeInactive();
                foreach (var segment in _segments)
                {
                    if (segment.NextOffset > RecoveryPoint)
                    {
                        segment.Flush(Syncer);
                    }

                    segment.FlushIndexes();
                }

                if (!Volatile.Read(ref _tailUnverified))
                {
                    Interlocked.Exchange(ref _recoveryPoint, LogEndOffset);
                    _producers.WriteSnapshot(Directory, LogEndOffset);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaStorageException)
            {
                failure = KafkaStorageException.Io($"{Topic}-{Partition}: close failed", e);
            }
        }

        Dispose();
        return failure is null && !Volatile.Read(ref _tailUnverified);
    }

    /// <summary>Removes everything at or after <paramref name="offset"/> (a follower whose log diverged).</summary>
    public void TruncateTo(long offset)
    {
        lock (_lock)
        {
            if (offset >= LogEndOffset)
            {
                return;
            }

            Interlocked.Increment(ref _truncations);
            if (CleanerCheckpoint > offset)
            {
                Interlocked.Exchange(ref _cleanerCheckpoint, offset);
            }

            var keep = _segments.Where(s => s.BaseOffset < offset || s == _segments[0]).ToList();
            foreach (var segment in _segments.Except(keep))
            {
                segment.Dispose();
                segment.DeleteFiles("");
            }

            keep[^1].SetActive(true);
            keep[^1].TruncateTo(offset);
            _segments = [.. keep];
            LeaderEpochs.TruncateFromEnd(offset);
            if (RecoveryPoint > LogEndOffset)
            {
                Interlocked.Exchange(ref _recoveryPoint, LogEndOffset);
            }

            if (LogStartOffset > LogEndOffset)
            {
                Interlocked.Exchange(ref _logStartOffset, LogEndOffset);
            }

            LoadProducerState();
        }
    }

    /// <summary>
    /// Drops the whole log and starts it empty at <paramref name="offset"/>, past its end: a follower so far behind
    /// that its leader no longer has the records it lacks (their log start passed its end) starts over from there.
    /// Segments, producer snapshots and leader epochs go; the new empty segment is on disk before the old ones are
    /// deleted.
    /// </summary>
    public void TruncateFullyAndStartAt(long offset)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (offset <= LogEndOffset)
            {
                throw new ArgumentOutOfRangeException(nameof(offset), offset, $"{Topic}-{Partition}: starting over at {offset} would not be past the log end offset {LogEndOffset}.");
            }

            Interlocked.Increment(ref _truncations);
            var old = _segments;
            var segment = LogSegment.Create(Directory, offset, Config, NowMs, handles: Handles);
            NativeFileSystem.SyncDirectory(Directory);
            _segments = [segment];
            foreach (var stale in old)
            {
                stale.Dispose();
                stale.DeleteFiles("");
            }

            foreach (var snapshot in ProducerStateManager.SnapshotOffsets(Directory))
            {
                File.Delete(ProducerStateManager.SnapshotPath(Directory, snapshot));
            }

            _producers.Clear();
            Interlocked.Exchange(ref _logStartOffset, offset);
            Interlocked.Exchange(ref _recoveryPoint, offset);
            Interlocked.Exchange(ref _cleanerCheckpoint, offset);
            LeaderEpochs.TruncateFromEnd(long.MinValue);
            RefreshFirstUnstableOffset();
        }
    }

    /// <summary>
    /// Rebuilds the idempotent producers' state: the newest snapshot not past the log end, then the headers of the
    /// batches after it.
    /// </summary>
    private void LoadProducerState()
    {
        var end = LogEndOffset;
        var from = Math.Max(_producers.LoadSnapshot(Directory, end), _segments[0].BaseOffset);
        var now = NowMs;
        foreach (var segment in _segments.Where(s => s.NextOffset > from))
        {
            segment.ForEachBatchHeader(from, header =>
            {
                // An ABORT marker whose index entry a crash lost gets it back.
                if (header.IsControlBatch && header.ProducerId != RecordBatchHeader.NoProducerId
                    && !segment.TxnIndex.Contains(header.ProducerId, header.BaseOffset) && ReadMarkerType(segment, header) == ControlRecordType.Abort)
                {
                    IndexAbortedTransaction(segment, header);
                }

                _producers.Update(header, now);
            });
        }

        RefreshFirstUnstableOffset();
    }
}
