using Osprey.Broker.Replication;

namespace Osprey.Broker.Tests.Replication;

/// <summary>
/// Where logs part, by leader epochs: the cases KIP-101 and KIP-279 were written for. Epoch lists are (epoch, start
/// offset) entries.
/// </summary>
public class EpochLineageTests
{
    [Fact]
    public void AFollowerWhoseHighWatermarkLagsKeepsWhatTheLeaderHasInsteadOfTruncatingToIt()
    {
        // KIP-101's first case: both hold m0 and m1 of epoch 0, the follower's high watermark is 1. Truncating to it
        // would lose m1 if the follower then led.
        var truncation = EpochLineage.TruncationFor([(0, 0)], followerLogEndOffset: 2, followerHighWatermark: 1, leaderEpoch: 0, leaderEndOffset: 2);
        Assert.Equal(new Truncation(2, Complete: true), truncation);
        Assert.Null(EpochLineage.DivergingEpoch([(0, 0)], leaderLogEndOffset: 2, lastFetchedEpoch: 0, fetchOffset: 2));
    }

    [Fact]
    public void AReturningLeaderDropsWhatItWroteThatTheNewLeaderOverwrote()
    {
        // KIP-101's second case: A wrote m1 (epoch 0) that B never got; B led in epoch 1 and wrote m2 at offset 1.
        var diverging = EpochLineage.DivergingEpoch([(0, 0), (1, 1)], leaderLogEndOffset: 2, lastFetchedEpoch: 0, fetchOffset: 2);
        Assert.Equal((0, 1L), diverging);
        var truncation = EpochLineage.TruncationFor([(0, 0)], followerLogEndOffset: 2, followerHighWatermark: 0, diverging!.Value.Epoch, diverging.Value.EndOffset);
        Assert.Equal(new Truncation(1, Complete: true), truncation);
    }

    [Fact]
    public void AnEpochTheLeaderNeverHadIsCutWhereTheFollowersOwnCopyOfTheCommonEpochEnds()
    {
        // KIP-279: the follower led epoch 1 (offsets 3-5, never committed); the leader has epoch 0 up to 5, then epoch 2.
        var diverging = EpochLineage.DivergingEpoch([(0, 0), (2, 5)], leaderLogEndOffset: 8, lastFetchedEpoch: 1, fetchOffset: 6);
        Assert.Equal((0, 5L), diverging);
        var truncation = EpochLineage.TruncationFor([(0, 0), (1, 3)], followerLogEndOffset: 6, followerHighWatermark: 2, leaderEpoch: 0, leaderEndOffset: 5);
        Assert.Equal(new Truncation(3, Complete: true), truncation);
    }

    [Fact]
    public void SeveralUnknownEpochsTakeSeveralRounds()
    {
        // Leader: epoch 0 from 0, epoch 2 from 4, log end 9. Follower: epoch 0 from 0, 1 from 2, 3 from 6, log end 8.
        IReadOnlyList<(int, long)> leader = [(0, 0), (2, 4)];
        var follower = new List<(int Epoch, long StartOffset)> { (0, 0), (1, 2), (3, 6) };

        var first = EpochLineage.DivergingEpoch(leader, 9, lastFetchedEpoch: 3, fetchOffset: 8)!.Value;
        Assert.Equal((2, 9L), first);
        var round1 = EpochLineage.TruncationFor(follower, 8, 0, first.Epoch, first.EndOffset);
        Assert.Equal(new Truncation(6, Complete: false), round1); // it has no epoch 2: to the end of its epoch 1
        follower.RemoveAll(e => e.StartOffset >= round1.Offset);

        var second = EpochLineage.DivergingEpoch(leader, 9, lastFetchedEpoch: 1, fetchOffset: 6)!.Value;
        Assert.Equal((0, 4L), second);
        var round2 = EpochLineage.TruncationFor(follower, 6, 0, second.Epoch, second.EndOffset);
        Assert.Equal(new Truncation(2, Complete: true), round2); // its epoch 0 ends at 2, before the leader's
    }

    [Fact]
    public void AFollowerWithOnlyEpochsTheLeaderLacksLosesThemAll()
    {
        // The follower led epoch 5 from an empty log; the leader has epoch 3 (0-9), then 6.
        var diverging = EpochLineage.DivergingEpoch([(3, 0), (6, 10)], 12, lastFetchedEpoch: 5, fetchOffset: 4)!.Value;
        Assert.Equal((3, 10L), diverging);
        Assert.Equal(new Truncation(0, Complete: true), EpochLineage.TruncationFor([(5, 0)], 4, 0, diverging.Epoch, diverging.EndOffset));

        // A leader that knows no epoch that low: back to the high watermark.
        Assert.Equal(new Truncation(2, Complete: true), EpochLineage.TruncationFor([(5, 0)], 4, 2, -1, -1));
    }

    [Fact]
    public void AFollowerThatHasNotFetchedAnythingIsNeverDiverging()
    {
        Assert.Null(EpochLineage.DivergingEpoch([(0, 0)], 10, lastFetchedEpoch: -1, fetchOffset: 0));
        Assert.Null(EpochLineage.DivergingEpoch([(0, 0), (4, 7)], 10, lastFetchedEpoch: 4, fetchOffset: 10));
        Assert.Equal((4, 10L), EpochLineage.DivergingEpoch([(0, 0), (4, 7)], 10, lastFetchedEpoch: 4, fetchOffset: 11)); // ahead of the leader
    }
}
