using Osprey.Storage;

namespace Osprey.Broker.Replication;

/// <summary>Where a follower truncates: <see cref="Offset"/>, and whether that settles it or the leader is asked again.</summary>
/// <param name="Complete">
/// False when the follower does not know the epoch the leader answered with: it truncated to the end of its own
/// greatest epoch below that, and asks again about its new latest epoch.
/// </param>
public readonly record struct Truncation(long Offset, bool Complete);

/// <summary>
/// How leader and follower find where their logs part, by leader epochs (KIP-101, KIP-279), free of I/O. Each side's
/// epochs are its leader-epoch entries: (epoch, start offset), in epoch order. A follower never truncates to its high
/// watermark while the leader knows its epochs: a high watermark may lag behind what is committed.
/// </summary>
public static class EpochLineage
{
    /// <summary>
    /// The leader's check of a fetch (Fetch v12+): a follower whose last fetched batch was of
    /// <paramref name="lastFetchedEpoch"/> and whose log ends at <paramref name="fetchOffset"/> holds the leader's
    /// log only if the leader has that epoch and it ends no earlier. Otherwise the answer is the DivergingEpoch: the
    /// leader's greatest epoch ≤ the follower's, and where it ends on the leader; no records are sent.
    /// </summary>
    public static (int Epoch, long EndOffset)? DivergingEpoch(
        IReadOnlyList<(int Epoch, long StartOffset)> leaderEpochs, long leaderLogEndOffset, int lastFetchedEpoch, long fetchOffset)
    {
        if (lastFetchedEpoch < 0)
        {
            return null;
        }

        var (epoch, end) = LeaderEpochCache.EndOffsetFor(leaderEpochs, lastFetchedEpoch, leaderLogEndOffset);
        return epoch == lastFetchedEpoch && end >= fetchOffset ? null : (epoch, end);
    }

    /// <summary>
    /// Where the follower truncates, given the leader's answer about one of its epochs (from OffsetForLeaderEpoch or
    /// a DivergingEpoch): (<paramref name="leaderEpoch"/>, <paramref name="leaderEndOffset"/>), the leader's
    /// greatest epoch ≤ the one asked and its end offset there.
    /// <list type="bullet">
    /// <item>The leader knows no such epoch (-1): back to the follower's high watermark, the only point known safe.</item>
    /// <item>The follower has that epoch too: to where the first of the two copies of it ends.</item>
    /// <item>It does not: to the end of its own greatest epoch below it, and ask again (not complete).</item>
    /// <item>
    /// It has no epoch that low: every record it has epochs for is of an epoch the leader does not have, so to the
    /// start of its first epoch (or the leader's end offset, if earlier). Kafka truncates to the leader's end offset
    /// here, which keeps records of an epoch the leader never had when that end lies past the follower's first epoch.
    /// </item>
    /// </list>
    /// The offset is never past the follower's own log end offset.
    /// </summary>
    public static Truncation TruncationFor(
        IReadOnlyList<(int Epoch, long StartOffset)> followerEpochs, long followerLogEndOffset, long followerHighWatermark, int leaderEpoch, long leaderEndOffset)
    {
        if (leaderEpoch < 0 || leaderEndOffset < 0)
        {
            return new Truncation(Math.Min(followerHighWatermark, followerLogEndOffset), Complete: true);
        }

        var (epoch, end) = LeaderEpochCache.EndOffsetFor(followerEpochs, leaderEpoch, followerLogEndOffset);
        if (epoch < 0)
        {
            var firstStart = followerEpochs.Count > 0 ? followerEpochs[0].StartOffset : long.MaxValue;
            return new Truncation(Math.Min(Math.Min(leaderEndOffset, firstStart), followerLogEndOffset), Complete: true);
        }

        return epoch == leaderEpoch
            ? new Truncation(Math.Min(Math.Min(leaderEndOffset, end), followerLogEndOffset), Complete: true)
            : new Truncation(Math.Min(end, followerLogEndOffset), Complete: false);
    }
}
