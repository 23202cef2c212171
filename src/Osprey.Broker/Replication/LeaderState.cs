using System.Collections.Immutable;

namespace Osprey.Broker.Replication;

/// <summary>What the leader knows of one follower, from its fetches.</summary>
/// <param name="LogEndOffset">The follower's log end offset: the offset of its last fetch (-1 before any).</param>
/// <param name="LastFetchMs">When it last fetched (-1: never in this leadership).</param>
/// <param name="LastCaughtUpMs">
/// The last time its log reached the leader's log end offset (as of that fetch, or of its previous fetch); a follower
/// in the ISR that stops catching up for longer than replica.lag.time.max.ms is removed from it.
/// </param>
/// <param name="BrokerEpoch">The broker epoch its fetches named (-1: unknown).</param>
/// <param name="LeaderEndAtLastFetch">The leader's log end offset when it last fetched (-1: never).</param>
public readonly record struct FollowerProgress(long LogEndOffset, long LastFetchMs, long LastCaughtUpMs, long BrokerEpoch, long LeaderEndAtLastFetch)
{
    public static FollowerProgress Initial(bool inIsr, long nowMs) => new(-1, -1, inIsr ? nowMs : -1, -1, -1);
}

/// <summary>What a follower's fetch did to the partition.</summary>
public enum FetchRecordResult
{
    /// <summary>Recorded; the high watermark did not move.</summary>
    Recorded,

    /// <summary>Recorded, and the high watermark moved (acks=all waiters may complete).</summary>
    HighWatermarkAdvanced,

    /// <summary>The fetching broker holds no replica of the partition: nothing recorded.</summary>
    NotAReplica,
}

/// <summary>
/// A partition's leader-side replication state, free of I/O and clocks (times are passed in): each follower's
/// progress, the high watermark, and the ISR changes to ask the controller for. The leader's own log end offset is
/// passed to each call, since appends happen elsewhere.
/// <para>
/// The high watermark is the least log end offset over the <em>maximal</em> ISR: the ISR the controller committed
/// plus any change proposed and not yet answered (KIP-497). A pending shrink therefore still waits for the replicas
/// it would remove, and a pending expansion already waits for the one it adds: whichever way the controller decides,
/// every replica of the resulting ISR holds everything below the high watermark. It never moves back while this
/// state leads.
/// </para>
/// </summary>
public sealed class LeaderState
{
    private readonly Dictionary<int, FollowerProgress> _followers = [];

    /// <summary>
    /// The state of a leadership that starts now: <paramref name="epochStartOffset"/> is the leader's log end offset
    /// when its epoch began. ISR members count as caught up at <paramref name="nowMs"/> (they get a full
    /// replica.lag.time.max.ms to fetch); the others have never caught up.
    /// </summary>
    public LeaderState(
        int leaderId, int leaderEpoch, int partitionEpoch, IReadOnlyList<int> replicas, IReadOnlyList<int> isr, long epochStartOffset, long highWatermark, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(replicas);
        ArgumentNullException.ThrowIfNull(isr);
        LeaderId = leaderId;
        LeaderEpoch = leaderEpoch;
        PartitionEpoch = partitionEpoch;
        Replicas = [.. replicas];
        Isr = [.. isr];
        EpochStartOffset = epochStartOffset;
        HighWatermark = highWatermark;
        foreach (var replica in replicas.Where(r => r != leaderId))
        {
            _followers[replica] = FollowerProgress.Initial(isr.Contains(replica), nowMs);
        }
    }

    public int LeaderId { get; }

    public int LeaderEpoch { get; }

    /// <summary>The partition epoch of the ISR this state holds (the controller's version of the partition).</summary>
    public int PartitionEpoch { get; private set; }

    public ImmutableArray<int> Replicas { get; private set; }

    /// <summary>The ISR the controller committed.</summary>
    public ImmutableArray<int> Isr { get; private set; }

    /// <summary>The ISR proposed to the controller and not answered yet (null: none).</summary>
    public ImmutableArray<int>? PendingIsr { get; private set; }

    /// <summary>The committed ISR together with a pending change's members: who the high watermark waits for.</summary>
    public IReadOnlyList<int> MaximalIsr => PendingIsr is { } pending ? [.. Isr.Union(pending)] : Isr;

    /// <summary>The leader's log end offset when its epoch began; a follower joins the ISR only once past it.</summary>
    public long EpochStartOffset { get; }

    /// <summary>The offset below which every member of the maximal ISR holds the log.</summary>
    public long HighWatermark { get; private set; }

    public FollowerProgress Progress(int replicaId) => _followers[replicaId];

    /// <summary>
    /// A follower fetched at <paramref name="fetchOffset"/> (its log end offset) while the leader's log ended at
    /// <paramref name="leaderLogEndOffset"/>. It counts as caught up now if it has reached that end, or as of its
    /// previous fetch if it has reached what the leader's end was then.
    /// </summary>
    public FetchRecordResult RecordFetch(int replicaId, long fetchOffset, long brokerEpoch, long leaderLogEndOffset, long nowMs)
    {
        if (!_followers.TryGetValue(replicaId, out var previous))
        {
            return FetchRecordResult.NotAReplica;
        }

        var caughtUp = previous.LastCaughtUpMs;
        if (fetchOffset >= leaderLogEndOffset)
        {
            caughtUp = nowMs;
        }
        else if (previous.LastFetchMs >= 0 && fetchOffset >= previous.LeaderEndAtLastFetch)
        {
            caughtUp = Math.Max(caughtUp, previous.LastFetchMs);
        }

        _followers[replicaId] = new FollowerProgress(fetchOffset, nowMs, caughtUp, brokerEpoch, leaderLogEndOffset);
        return AdvanceHighWatermark(leaderLogEndOffset) ? FetchRecordResult.HighWatermarkAdvanced : FetchRecordResult.Recorded;
    }

    /// <summary>
    /// Moves the high watermark up to what every member of the maximal ISR holds (the leader up to
    /// <paramref name="leaderLogEndOffset"/>); true when it moved. Called after fetches, appends and ISR changes.
    /// </summary>
    public bool AdvanceHighWatermark(long leaderLogEndOffset)
    {
        var candidate = leaderLogEndOffset;
        foreach (var member in MaximalIsr)
        {
            if (member != LeaderId)
            {
                candidate = Math.Min(candidate, _followers.TryGetValue(member, out var progress) ? progress.LogEndOffset : -1);
            }
        }

        if (candidate <= HighWatermark)
        {
            return false;
        }

        HighWatermark = candidate;
        return true;
    }

    /// <summary>
    /// The ISR without the followers that have not caught up within <paramref name="lagTimeMaxMs"/>, or null when
    /// none lags or a change is already pending. The leader itself always stays.
    /// </summary>
    public ImmutableArray<int>? ShrinkCandidate(long nowMs, long lagTimeMaxMs)
    {
        if (PendingIsr is not null)
        {
            return null;
        }

        var lagging = Isr.Where(r => r != LeaderId && _followers.TryGetValue(r, out var p) && nowMs - p.LastCaughtUpMs > lagTimeMaxMs).ToList();
        return lagging.Count == 0 ? null : [.. Isr.Except(lagging)];
    }

    /// <summary>
    /// The ISR with the followers that may join it: replicas outside it whose log reaches the high watermark and the
    /// start of this leader's epoch, on brokers <paramref name="eligible"/> says may join (unfenced, not shutting
    /// down, at the broker epoch they fetched with). Null when none may, or a change is already pending.
    /// </summary>
    public ImmutableArray<int>? ExpandCandidate(Func<int, long, bool> eligible)
    {
        ArgumentNullException.ThrowIfNull(eligible);
        if (PendingIsr is not null)
        {
            return null;
        }

        var joining = _followers
            .Where(f => !Isr.Contains(f.Key) && f.Value.LogEndOffset >= HighWatermark && f.Value.LogEndOffset >= EpochStartOffset && eligible(f.Key, f.Value.BrokerEpoch))
            .Select(f => f.Key)
            .Order()
            .ToList();
        return joining.Count == 0 ? null : [.. Isr, .. joining];
    }

    /// <summary>Records that <paramref name="isr"/> was proposed to the controller (AlterPartition sent).</summary>
    public void Propose(ImmutableArray<int> isr)
    {
        if (PendingIsr is not null)
        {
            throw new InvalidOperationException("An ISR change is already pending.");
        }

        PendingIsr = isr;
    }

    /// <summary>
    /// The controller's ISR for the partition (its answer to a proposal, or a metadata change): adopted when its
    /// partition epoch is newer than the one held, and any pending proposal is settled. False when it was stale.
    /// </summary>
    public bool Adopt(IReadOnlyList<int> isr, IReadOnlyList<int> replicas, int partitionEpoch, long leaderLogEndOffset, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(isr);
        ArgumentNullException.ThrowIfNull(replicas);
        if (partitionEpoch <= PartitionEpoch)
        {
            return false;
        }

        PartitionEpoch = partitionEpoch;
        Isr = [.. isr];
        PendingIsr = null;
        if (!replicas.SequenceEqual(Replicas))
        {
            Replicas = [.. replicas];
            foreach (var gone in _followers.Keys.Where(k => !replicas.Contains(k)).ToList())
            {
                _followers.Remove(gone);
            }

            foreach (var added in replicas.Where(r => r != LeaderId && !_followers.ContainsKey(r)))
            {
                _followers[added] = FollowerProgress.Initial(isr.Contains(added), nowMs);
            }
        }

        AdvanceHighWatermark(leaderLogEndOffset);
        return true;
    }

    /// <summary>The controller refused the proposal (or it failed): none is pending any more; the next check proposes again.</summary>
    public void ProposalFailed() => PendingIsr = null;
}
