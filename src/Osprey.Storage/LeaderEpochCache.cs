using System.Collections.Immutable;

namespace Osprey.Storage;

/// <summary>
/// The start offset of each leader epoch in a partition's log, kept in <c>leader-epoch-checkpoint</c>. Answers
/// OffsetForLeaderEpoch and lets a follower find where its log diverges.
/// </summary>
public sealed class LeaderEpochCache
{
    private readonly string _path;
    // Copy-on-write: readers (the leader checking a follower's fetch) take the current array without a lock while an
    // append assigns an epoch.
    private ImmutableArray<(int Epoch, long StartOffset)> _entries;

    public LeaderEpochCache(string partitionDirectory)
    {
        _path = Path.Combine(partitionDirectory, Checkpoints.LeaderEpochFile);
        _entries = [.. Checkpoints.ReadEpochs(_path)];
    }

    public IReadOnlyList<(int Epoch, long StartOffset)> Entries => _entries;

    public int? LatestEpoch => _entries is { Length: > 0 } entries ? entries[^1].Epoch : null;

    /// <summary>Records that <paramref name="epoch"/> starts at <paramref name="startOffset"/> if it is new.</summary>
    public void Assign(int epoch, long startOffset)
    {
        if (epoch < 0 || (_entries.Length > 0 && epoch <= _entries[^1].Epoch))
        {
            return;
        }

        _entries = _entries.Add((epoch, startOffset));
        Checkpoints.WriteEpochs(_path, _entries);
    }

    /// <summary>
    /// The end offset of <paramref name="epoch"/> (the start of the next greater epoch, or the log end offset for the
    /// latest) and the greatest known epoch ≤ the one asked; for an epoch older than all, that epoch and the first
    /// one's start; (-1, -1) when no epoch is known.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetFor(int epoch, long logEndOffset) => EndOffsetFor(_entries, epoch, logEndOffset);

    /// <summary><see cref="EndOffsetFor(int, long)"/> over any list of (epoch, start offset) entries in epoch order.</summary>
    public static (int Epoch, long EndOffset) EndOffsetFor(IReadOnlyList<(int Epoch, long StartOffset)> entries, int epoch, long logEndOffset)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (epoch < 0 || entries.Count == 0)
        {
            return (-1, -1);
        }

        for (var i = entries.Count - 1; i >= 0; i--)
        {
            if (entries[i].Epoch <= epoch)
            {
                var end = i == entries.Count - 1 ? logEndOffset : entries[i + 1].StartOffset;
                return (entries[i].Epoch, end);
            }
        }

        // Older than every epoch known here: as Kafka answers, that epoch ends where the first known one starts.
        return (epoch, entries[0].StartOffset);
    }

    /// <summary>Removes epochs that start at or after <paramref name="offset"/> (the log was truncated there).</summary>
    public void TruncateFromEnd(long offset)
    {
        var kept = _entries.RemoveAll(e => e.StartOffset >= offset);
        if (kept.Length != _entries.Length)
        {
            _entries = kept;
            Checkpoints.WriteEpochs(_path, _entries);
        }
    }

    /// <summary>Moves the first epoch's start up to the new log start offset.</summary>
    public void TruncateFromStart(long logStartOffset)
    {
        var entries = _entries.ToBuilder();
        var changed = false;
        while (entries.Count > 1 && entries[1].StartOffset <= logStartOffset)
        {
            entries.RemoveAt(0);
            changed = true;
        }

        if (entries.Count > 0 && entries[0].StartOffset < logStartOffset)
        {
            entries[0] = (entries[0].Epoch, logStartOffset);
            changed = true;
        }

        if (changed)
        {
            _entries = entries.ToImmutable();
            Checkpoints.WriteEpochs(_path, _entries);
        }
    }
}
