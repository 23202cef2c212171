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
        bool cleanShutdown = false)
    {
        System.IO.Directory.CreateDirectory(directory);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        CompleteInterruptedOperations(directory);
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
                var trust = cleanShutdown || nextBase <= recoveryPoint;
                var segment = LogSegment.Open(directory, baseOffset, config, trust, now, out var truncated);
                segments.Add(segment);
                if (truncated > 0 && i + 1 < baseOffsets.Count)
                {
                    truncatedAt = i;
                    break;
                }
            }

            if (truncatedAt >= 0)
            {
                // A hole in the middle of the log: what follows it cannot be trusted to be contiguous.
                foreach (var baseOffset in baseOffsets.Skip(truncatedAt + 1))
                {
                    foreach (var suffix in new[] { LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix })
                    {
                        File.Delete(LogSegment.FilePath(directory, baseOffset, suffix));
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
                segments.Add(LogSegment.Create(directory, Math.Max(0, logStartOffset), config, now));
                NativeFileSystem.SyncDirectory(directory);
                NativeFileSystem.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(directory))!);
            }

            var logEnd = segments[^1].NextOffset;
            var start = Math.Clamp(logStartOffset, segments[0].BaseOffset, logEnd);
            var log = new PartitionLog(directory, topic, partition, config, time, [.. segments], start, Math.Min(logEnd, cleanShutdown ? logEnd : recoveryPoint));
            log.LeaderEpochs.TruncateFromEnd(logEnd);
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
    /// Leftovers of operations a crash interrupted: ".deleted" files are gone for good, ".cleaned" files are an
    /// unfinished compaction (the originals are intact), ".swap" files are a finished compaction whose swap must be
    /// completed: the segments they replace are removed and the swap files take the live names.
    /// </summary>
    private static void CompleteInterruptedOperations(string directory)
    {
        foreach (var file in System.IO.Directory.GetFiles(directory))
        {
            if (file.EndsWith(LogSegment.DeletedSuffix, StringComparison.Ordinal) || file.EndsWith(LogSegment.CleanedSuffix, StringComparison.Ordinal)
                || file.EndsWith(".tmp", StringComparison.Ordinal))
            {
                File.Delete(file);
            }
        }

        var swaps = System.IO.Directory.GetFiles(directory, "*" + LogSegment.LogSuffix + LogSegment.SwapSuffix).Order(StringComparer.Ordinal).ToList();
        foreach (var swapLog in swaps)
        {
            var name = Path.GetFileName(swapLog)[..^LogSegment.SwapSuffix.Length];
            if (!LogSegment.TryParseBaseOffset(name, LogSegment.LogSuffix, out var baseOffset))
            {
                continue;
            }

            var covers = SwapCoverage(swapLog);
            foreach (var existing in System.IO.Directory.GetFiles(directory, "*" + LogSegment.LogSuffix))
            {
                if (LogSegment.TryParseBaseOffset(Path.GetFileName(existing), LogSegment.LogSuffix, out var other)
                    && other >= baseOffset && other < covers)
                {
                    foreach (var suffix in new[] { LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix })
                    {
                        File.Delete(LogSegment.FilePath(directory, other, suffix));
                    }
                }
            }

            foreach (var suffix in new[] { LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix })
            {
                var swap = LogSegment.FilePath(directory, baseOffset, suffix) + LogSegment.SwapSuffix;
                if (File.Exists(swap))
                {
                    File.Move(swap, LogSegment.FilePath(directory, baseOffset, suffix), overwrite: true);
                }
            }
        }
    }

    /// <summary>The first offset after the segments a swap file replaces, written by the cleaner next to it.</summary>
    private static long SwapCoverage(string swapLog)
    {
        var marker = swapLog + ".covers";
        if (File.Exists(marker) && long.TryParse(File.ReadAllText(marker).Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var end))
        {
            File.Delete(marker);
            return end;
        }

        return long.MaxValue;
    }

    /// <summary>
    /// A clean close: flushes everything, records the final max timestamp of the active segment and flushes the
    /// indexes, so the next open can trust them.
    /// </summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            try
            {
                ActiveSegment.OnBecomeInactive();
                foreach (var segment in _segments)
                {
                    if (segment.NextOffset > RecoveryPoint)
                    {
                        segment.Flush();
                    }

                    segment.FlushIndexes();
                }

                Interlocked.Exchange(ref _recoveryPoint, LogEndOffset);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw KafkaStorageException.Io($"{Topic}-{Partition}: close failed", e);
            }
        }

        Dispose();
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

            var keep = _segments.Where(s => s.BaseOffset < offset || s == _segments[0]).ToList();
            foreach (var segment in _segments.Except(keep))
            {
                segment.Dispose();
                segment.DeleteFiles("");
            }

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
        }
    }
}
