using Osprey.Broker.Replication;

namespace Osprey.Broker.Tests.Replication;

/// <summary>
/// The leader's view of its followers: the high watermark over the maximal ISR (KIP-497), when a follower lags out of
/// the ISR or may join it, and which controller answers are adopted. Times are plain milliseconds.
/// </summary>
public class LeaderStateTests
{
    private const long LagMs = 30_000;

    [Fact]
    public void TheHighWatermarkIsWhatEveryIsrMemberHoldsAndNeverGoesBack()
    {
        var state = new LeaderState(leaderId: 1, leaderEpoch: 3, partitionEpoch: 5, replicas: [1, 2, 3], isr: [1, 2, 3], epochStartOffset: 10, highWatermark: 8, nowMs: 0);
        Assert.False(state.AdvanceHighWatermark(leaderLogEndOffset: 20)); // no follower has fetched yet
        Assert.Equal(FetchRecordResult.Recorded, state.RecordFetch(2, fetchOffset: 15, brokerEpoch: 7, leaderLogEndOffset: 20, nowMs: 1));
        Assert.Equal(8, state.HighWatermark);
        Assert.Equal(FetchRecordResult.HighWatermarkAdvanced, state.RecordFetch(3, fetchOffset: 12, brokerEpoch: 7, leaderLogEndOffset: 20, nowMs: 2));
        Assert.Equal(12, state.HighWatermark);

        // A follower that went back (it truncated) does not move the high watermark back.
        state.RecordFetch(3, fetchOffset: 9, brokerEpoch: 7, leaderLogEndOffset: 20, nowMs: 3);
        Assert.Equal(12, state.HighWatermark);
        Assert.Equal(FetchRecordResult.NotAReplica, state.RecordFetch(4, 20, 7, 20, 4));

        // Alone in the ISR, the leader's own log end is the high watermark.
        var alone = new LeaderState(1, 0, 0, [1, 2], [1], 0, 0, 0);
        Assert.True(alone.AdvanceHighWatermark(5));
        Assert.Equal(5, alone.HighWatermark);
    }

    [Fact]
    public void APendingShrinkStillWaitsForTheReplicaItRemovesAndAPendingExpansionForTheOneItAdds()
    {
        var state = new LeaderState(1, 0, 0, [1, 2, 3], [1, 2, 3], 0, 0, nowMs: 0);
        state.RecordFetch(2, 10, 1, 10, nowMs: 100);
        state.RecordFetch(3, 4, 1, 10, nowMs: 100);
        Assert.Equal(4, state.HighWatermark);

        // Replica 3 stops fetching; after the lag time it is proposed out of the ISR.
        state.RecordFetch(2, 10, 1, 10, nowMs: LagMs);
        Assert.Null(state.ShrinkCandidate(nowMs: LagMs, LagMs));
        var shrunk = state.ShrinkCandidate(nowMs: LagMs + 1, LagMs);
        Assert.Equal([1, 2], shrunk);
        state.Propose(shrunk!.Value);
        Assert.Null(state.ShrinkCandidate(LagMs + 2, LagMs)); // one change at a time
        Assert.False(state.AdvanceHighWatermark(12)); // the proposal is not committed: 3 still counts
        Assert.Equal(4, state.HighWatermark);

        Assert.True(state.Adopt([1, 2], [1, 2, 3], partitionEpoch: 1, leaderLogEndOffset: 10, nowMs: LagMs + 3));
        Assert.Equal(10, state.HighWatermark);
        Assert.Null(state.PendingIsr);

        // Back, and past the high watermark: it may join; while the expansion is pending it already counts.
        state.RecordFetch(3, 10, 1, 12, nowMs: LagMs + 4);
        var expanded = state.ExpandCandidate((_, _) => true);
        Assert.Equal([1, 2, 3], expanded);
        state.Propose(expanded!.Value);
        state.RecordFetch(2, 12, 1, 12, nowMs: LagMs + 5);
        Assert.Equal(10, state.HighWatermark); // 3 is at 10
        Assert.Equal([1, 2, 3], state.MaximalIsr.Order());
    }

    [Fact]
    public void AFollowerJoinsOnlyPastTheHighWatermarkAndTheEpochStartOnAnEligibleBroker()
    {
        var state = new LeaderState(1, 2, 0, [1, 2, 3], [1, 2], epochStartOffset: 50, highWatermark: 40, nowMs: 0);
        state.RecordFetch(2, 45, 1, 60, 1);
        Assert.Equal(45, state.HighWatermark);
        state.RecordFetch(3, 47, 9, 60, 2);
        Assert.Null(state.ExpandCandidate((_, _) => true)); // past the high watermark, not past the epoch's start
        state.RecordFetch(3, 55, 9, 60, 3);
        Assert.Null(state.ExpandCandidate((id, epoch) => !(id == 3 && epoch == 9))); // its broker may not join (fenced, say)
        Assert.Equal([1, 2, 3], state.ExpandCandidate((_, _) => true));
    }

    [Fact]
    public void AFollowerThatReachedTheLeadersPreviousEndCountsAsCaughtUpAtItsPreviousFetch()
    {
        var state = new LeaderState(1, 0, 0, [1, 2], [1, 2], 0, 0, nowMs: 0);
        state.RecordFetch(2, 0, 1, leaderLogEndOffset: 100, nowMs: 20_000); // far behind
        state.RecordFetch(2, 100, 1, leaderLogEndOffset: 180, nowMs: 40_000); // reached where the leader was at 20 s
        Assert.Equal(20_000, state.Progress(2).LastCaughtUpMs);
        Assert.Null(state.ShrinkCandidate(nowMs: 50_000, LagMs));
        Assert.Equal([1], state.ShrinkCandidate(nowMs: 50_001, LagMs));
    }

    [Fact]
    public void AStaleControllerAnswerIsNotAdoptedAndAFailedProposalCanBeMadeAgain()
    {
        var state = new LeaderState(1, 0, partitionEpoch: 4, [1, 2], [1, 2], 0, 0, 0);
        Assert.False(state.Adopt([1], [1, 2], partitionEpoch: 4, 0, 1));
        Assert.Equal([1, 2], state.Isr);
        state.Propose([1]);
        Assert.Throws<InvalidOperationException>(() => state.Propose([1]));
        state.ProposalFailed();
        state.Propose([1]);

        // A reassignment's new replica starts as never caught up.
        Assert.True(state.Adopt([1, 2], [1, 2, 3], partitionEpoch: 5, 0, 1));
        Assert.Equal(-1, state.Progress(3).LastCaughtUpMs);
    }
}
