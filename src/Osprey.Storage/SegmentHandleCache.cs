namespace Osprey.Storage;

/// <summary>
/// Keeps at most <see cref="Capacity"/> .log files of inactive segments open. Every partition's active segment
/// stays open (it takes the appends); an older segment's file is opened when a read needs it and closed again when
/// this cache needs room, so the descriptors a broker holds grow with its partitions, not with their segments. Index
/// files are not held open at all: their entries live in memory and are written when a segment rolls.
/// Eviction is second-chance FIFO: a segment read since it was last looked at goes to the back once. Closing a file
/// that a read is using is safe: the read holds a reference (<see cref="SegmentFileLease"/>), and the descriptor is
/// released when the last reference goes.
/// </summary>
public sealed class SegmentHandleCache
{
    private readonly Lock _lock = new();
    private readonly LinkedList<LogSegment> _open = [];

    public SegmentHandleCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>For logs opened without a broker (tools, tests): sized from the process's descriptor limit.</summary>
    public static SegmentHandleCache Default { get; } = new(DefaultCapacity(NativeFileSystem.OpenFileLimit()));

    /// <summary>How many inactive segment files may be open at once.</summary>
    public int Capacity { get; }

    /// <summary>Inactive segment files open now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _open.Count;
            }
        }
    }

    /// <summary>
    /// A quarter of the descriptor limit (the rest is for active segments, connections and everything else), at least
    /// 16 and at most 4,096.
    /// </summary>
    public static int DefaultCapacity(long openFileLimit) => (int)Math.Clamp(openFileLimit / 4, 16, 4096);

    /// <summary>Takes note of an inactive segment whose file was just opened; closes others beyond the capacity.</summary>
    internal void Opened(LogSegment segment)
    {
        List<LogSegment>? victims = null;
        lock (_lock)
        {
            if (segment.CacheNode is null)
            {
                segment.CacheNode = _open.AddLast(segment);
            }

            while (_open.Count > Capacity)
            {
                var first = _open.First!;
                _open.RemoveFirst();
                var candidate = first.Value;
                if (candidate == segment || candidate.TakeRecentUse())
                {
                    _open.AddLast(first); // the one being read now, or a second chance
                    continue;
                }

                candidate.CacheNode = null;
                (victims ??= []).Add(candidate);
            }
        }

        // Outside the lock: closing takes the segment's own lock, which a reader may hold while it calls Opened.
        foreach (var victim in victims ?? [])
        {
            victim.CloseIdleFile();
        }
    }

    /// <summary>Forgets a segment that was disposed or became active again.</summary>
    internal void Forget(LogSegment segment)
    {
        lock (_lock)
        {
            if (segment.CacheNode is { } node)
            {
                _open.Remove(node);
                segment.CacheNode = null;
            }
        }
    }
}
