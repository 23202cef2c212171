namespace Osprey.Storage;

public sealed partial class PartitionLog
{
    private readonly List<(LogSegment Segment, long DeleteAtMs)> _pendingDeletes = [];

    /// <summary>
    /// Applies retention.ms and retention.bytes (when cleanup.policy has delete) to closed segments, oldest first,
    /// advancing the log start offset. Returns the number of segments deleted.
    /// </summary>
    public int ApplyRetention()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return 0;
            }

            var deleted = 0;
            if (Config.Delete && Config.RetentionMs >= 0)
            {
                var now = NowMs;
                // A segment expires when its newest record is older than retention.ms; an empty timestamp (-1) uses
                // the time the segment was created.
                deleted += DeleteSegmentsLocked(s => now - (s.MaxTimestamp >= 0 ? s.MaxTimestamp : s.CreatedMs) > Config.RetentionMs);
            }

            if (Config.Delete && Config.RetentionBytes >= 0)
            {
                var excess = Size - Config.RetentionBytes;
                deleted += DeleteSegmentsLocked(s =>
                {
                    if (excess - s.Size < 0)
                    {
                        return false;
                    }

                    excess -= s.Size;
                    return true;
                });
            }

            DeletePendingFiles(force: false);
            return deleted;
        }
    }

    /// <summary>
    /// Deletes closed segments from the oldest while <paramref name="shouldDelete"/> holds (it stops at the first
    /// that is kept, so the log stays contiguous). The active segment is never deleted.
    /// </summary>
    private int DeleteSegmentsLocked(Func<LogSegment, bool> shouldDelete)
    {
        var segments = _segments;
        var count = 0;
        while (count < segments.Length - 1 && shouldDelete(segments[count]))
        {
            count++;
        }

        if (count == 0)
        {
            return 0;
        }

        _segments = segments[count..];
        var newStart = _segments[0].BaseOffset;
        if (newStart > LogStartOffset)
        {
            Interlocked.Exchange(ref _logStartOffset, newStart);
            LeaderEpochs.TruncateFromStart(newStart);
        }

        var deleteAt = NowMs + Config.FileDeleteDelayMs;
        foreach (var segment in segments[..count])
        {
            // Readers may still hold the files: rename now, delete after file.delete.delay.ms.
            try
            {
                segment.RenameTo(LogSegment.DeletedSuffix);
            }
            catch (IOException)
            {
                // Deleted anyway below; a leftover is removed at the next open.
            }

            _pendingDeletes.Add((segment, deleteAt));
        }

        return count;
    }

    /// <summary>Deletes the files of removed segments whose delay has passed (all of them with <paramref name="force"/>).</summary>
    public void DeletePendingFiles(bool force)
    {
        lock (_lock)
        {
            var now = NowMs;
            for (var i = _pendingDeletes.Count - 1; i >= 0; i--)
            {
                var (segment, at) = _pendingDeletes[i];
                if (force || now >= at)
                {
                    segment.Dispose();
                    try
                    {
                        segment.DeleteFiles(LogSegment.DeletedSuffix);
                    }
                    catch (IOException)
                    {
                        // A leftover .deleted file is removed at the next open.
                    }

                    _pendingDeletes.RemoveAt(i);
                }
            }
        }
    }
}
