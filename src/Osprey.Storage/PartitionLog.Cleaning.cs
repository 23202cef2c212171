using System.Globalization;
using System.Text;

namespace Osprey.Storage;

/// <summary>What <see cref="PartitionLog.ReplaceSegments"/> did.</summary>
internal enum SegmentReplacement
{
    /// <summary>The cleaned segment is live and the replaced ones are scheduled for deletion.</summary>
    Replaced,

    /// <summary>
    /// The log changed under the cleaner (segments deleted or truncated, or the log closed): nothing was committed
    /// and the cleaned files are the caller's to delete.
    /// </summary>
    Rejected,
}

public sealed partial class PartitionLog
{
    private long _cleanerCheckpoint;
    private long _truncations;

    /// <summary>
    /// The cleaner checkpoint: the first dirty offset, below which the log has been compacted. Kept in the data
    /// directory's <c>cleaner-offset-checkpoint</c> by the <see cref="LogManager"/>; lowered when the log is
    /// truncated below it.
    /// </summary>
    public long CleanerCheckpoint => Interlocked.Read(ref _cleanerCheckpoint);

    /// <summary>How many times the log was truncated: a cleaner that saw another count works on stale segments.</summary>
    internal long TruncationCount => Interlocked.Read(ref _truncations);

    internal bool IsDisposed
    {
        get
        {
            lock (_lock)
            {
                return _disposed;
            }
        }
    }

    /// <summary>Sets the cleaner checkpoint read back from disk when the log is opened.</summary>
    internal void RestoreCleanerCheckpoint(long offset) => Interlocked.Exchange(ref _cleanerCheckpoint, Math.Max(0, offset));

    /// <summary>
    /// Records that the log is compacted below <paramref name="offset"/>, unless it was truncated since the
    /// cleaner looked at it (<paramref name="truncationsSeen"/>).
    /// </summary>
    internal bool AdvanceCleanerCheckpoint(long offset, long truncationsSeen)
    {
        lock (_lock)
        {
            if (_disposed || _truncations != truncationsSeen)
            {
                return false;
            }

            Interlocked.Exchange(ref _cleanerCheckpoint, offset);
            return true;
        }
    }

    /// <summary>The marker next to a swap file that says where the segments it replaces end.</summary>
    internal static string SwapMarkerPath(string directory, long baseOffset) =>
        LogSegment.FilePath(directory, baseOffset, LogSegment.LogSuffix) + LogSegment.SwapSuffix + LogSegment.CoversSuffix;

    /// <summary>
    /// Swaps <paramref name="cleaned"/> (a flushed segment with ".cleaned" file names and the base offset of the
    /// first replaced segment) in for the consecutive closed segments <paramref name="replaced"/>, which must still
    /// be in the log, followed by a segment based at <paramref name="covers"/>, with no truncation since the
    /// cleaner's count <paramref name="truncationsSeen"/>. On disk: a ".covers" marker holding
    /// <paramref name="covers"/> is written, then the cleaned files are renamed to ".swap" (the commit point: from
    /// here an open completes the swap), the replaced segments to ".deleted" and the swap files to the live names,
    /// and the marker is removed. The replaced segments stay open for readers until file.delete.delay.ms has passed,
    /// like segments removed by retention. Throws <see cref="KafkaStorageException"/> when the disk fails after
    /// the commit point (the next open finishes the swap).
    /// </summary>
    internal SegmentReplacement ReplaceSegments(IReadOnlyList<LogSegment> replaced, LogSegment cleaned, long covers, long truncationsSeen)
    {
        ArgumentOutOfRangeException.ThrowIfZero(replaced.Count);

        // The marker means nothing until the .log.swap exists, so its fsync happens before appends are held up.
        var marker = SwapMarkerPath(Directory, cleaned.BaseOffset);
        try
        {
            Checkpoints.WriteAtomically(marker, Encoding.ASCII.GetBytes(covers.ToString(CultureInfo.InvariantCulture)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(marker);
            return SegmentReplacement.Rejected;
        }

        lock (_lock)
        {
            if (!StillInTheLog(replaced, cleaned, covers, truncationsSeen, out var start))
            {
                TryDelete(marker);
                return SegmentReplacement.Rejected;
            }

            var segments = _segments;
            try
            {
                cleaned.RenameTo(LogSegment.SwapSuffix);

                // The commit point is the .swap name: it must be on disk before the originals are renamed away.
                NativeFileSystem.SyncDirectory(Directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not committed: without a .log.swap file the marker and any renamed index files are leftovers.
                TryDelete(marker);
                return SegmentReplacement.Rejected;
            }

            try
            {
                foreach (var segment in replaced)
                {
                    segment.RenameTo(LogSegment.DeletedSuffix);
                }

                cleaned.RenameTo("");
                File.Delete(marker);
                NativeFileSystem.SyncDirectory(Directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw KafkaStorageException.Io($"{Topic}-{Partition}: the cleaner's swap at {cleaned.BaseOffset} failed after its commit point; the next open completes it", e);
            }

            _segments = [.. segments[..start], cleaned, .. segments[(start + replaced.Count)..]];
            var deleteAt = NowMs + Config.FileDeleteDelayMs;
            foreach (var segment in replaced)
            {
                _pendingDeletes.Add((segment, deleteAt));
            }

            return SegmentReplacement.Replaced;
        }
    }

    /// <summary>Whether the replaced segments are still consecutive closed segments of the log, as the cleaner read them.</summary>
    private bool StillInTheLog(IReadOnlyList<LogSegment> replaced, LogSegment cleaned, long covers, long truncationsSeen, out int start)
    {
        var segments = _segments;
        start = Array.IndexOf(segments, replaced[0]);
        if (_disposed || _truncations != truncationsSeen || start < 0 || start + replaced.Count >= segments.Length
            || segments[start + replaced.Count].BaseOffset != covers || cleaned.BaseOffset != replaced[0].BaseOffset)
        {
            return false;
        }

        for (var i = 1; i < replaced.Count; i++)
        {
            if (!ReferenceEquals(segments[start + i], replaced[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover is removed at the next open.
        }
    }
}
