using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage.Tests;

namespace Osprey.Controller.Tests;

/// <summary>
/// The controller's registration, heartbeat and fencing decisions, on a manual clock: each result's records are
/// applied to the image at the offsets a metadata log would give them, as the quorum does.
/// </summary>
public class QuorumControllerTests
{
    private const string Cluster = "osprey-test-cluster-id";
    private const long SessionMs = 9_000;

    private readonly ManualTimeProvider _time = new();
    private ClusterImage _image = ClusterImage.Empty;

    [Fact]
    public void ARegistrationIsFencedUntilTheBrokerHasCaughtUpWithItsOwnRecord()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        Append(new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 25 });
        var registered = Apply(controller.Register(_image, Registration(1)));
        Assert.Equal(ErrorCode.None, (ErrorCode)registered.ErrorCode);
        Assert.Equal(1, registered.BrokerEpoch); // the offset of its RegisterBrokerRecord: the feature record took 0
        var broker = _image.Brokers[1];
        Assert.Equal((1L, true, "rack-a", 19092), (broker.Epoch, broker.Fenced, broker.Rack, (int)broker.Endpoints.Single().Port));

        var behind = Apply(controller.Heartbeat(_image, Heartbeat(1, registered.BrokerEpoch, metadataOffset: 0)));
        Assert.Equal((false, true), (behind.IsCaughtUp, behind.IsFenced));
        Assert.True(_image.Brokers[1].Fenced);

        var caughtUp = Apply(controller.Heartbeat(_image, Heartbeat(1, registered.BrokerEpoch, metadataOffset: 1)));
        Assert.Equal((true, false), (caughtUp.IsCaughtUp, caughtUp.IsFenced));
        Assert.False(_image.Brokers[1].Fenced);

        // Once unfenced, heartbeats change nothing.
        var records = controller.Heartbeat(_image, Heartbeat(1, registered.BrokerEpoch, metadataOffset: 2)).Records;
        Assert.Empty(records);
    }

    [Fact]
    public void AnotherIncarnationIsRefusedWhileTheFirstHasALiveSessionAndTakesOverAfterIt()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var first = Guid.NewGuid();
        var epoch = Apply(controller.Register(_image, Registration(1, first))).BrokerEpoch;

        // The same incarnation again (a retried request): the same epoch, nothing written.
        var retried = controller.Register(_image, Registration(1, first));
        Assert.Equal((epoch, 0), (retried.Response.BrokerEpoch, retried.Records.Count));

        _time.Advance(SessionMs - 1);
        var duplicate = controller.Register(_image, Registration(1, Guid.NewGuid()));
        Assert.Equal(ErrorCode.DuplicateBrokerRegistration, (ErrorCode)duplicate.Response.ErrorCode);
        Assert.Empty(duplicate.Records);

        _time.Advance(1);
        var second = Guid.NewGuid();
        var taken = Apply(controller.Register(_image, Registration(1, second)));
        Assert.Equal(ErrorCode.None, (ErrorCode)taken.ErrorCode);
        Assert.True(taken.BrokerEpoch > epoch);
        Assert.Equal((second, true), (_image.Brokers[1].IncarnationId, _image.Brokers[1].Fenced));

        // The old incarnation's heartbeats now carry a stale epoch.
        Assert.Equal(ErrorCode.StaleBrokerEpoch, (ErrorCode)controller.Heartbeat(_image, Heartbeat(1, epoch, 10)).Response.ErrorCode);
        Assert.Equal(ErrorCode.BrokerIdNotRegistered, (ErrorCode)controller.Heartbeat(_image, Heartbeat(7, epoch, 10)).Response.ErrorCode);
    }

    [Fact]
    public void ARegistrationFromAnotherClusterOrWithoutTheFinalizedFeaturesIsRefused()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var stranger = Registration(1);
        stranger.ClusterId = "another-cluster";
        var refused = controller.Register(_image, stranger);
        Assert.Equal((ErrorCode.InconsistentClusterId, 0), ((ErrorCode)refused.Response.ErrorCode, refused.Records.Count));

        Append(new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 26 });
        var old = controller.Register(_image, Registration(1));
        Assert.Equal((ErrorCode.UnsupportedVersion, 0), ((ErrorCode)old.Response.ErrorCode, old.Records.Count));
    }

    [Fact]
    public void ABrokerIsFencedWhenItsSessionRunsOutAndUnfencedByItsNextHeartbeat()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var epoch = Apply(controller.Register(_image, Registration(1))).BrokerEpoch;
        Apply(controller.Heartbeat(_image, Heartbeat(1, epoch, epoch)));
        var other = Apply(controller.Register(_image, Registration(2))).BrokerEpoch;
        Apply(controller.Heartbeat(_image, Heartbeat(2, other, other)));

        for (var i = 0; i < 4; i++)
        {
            _time.Advance(2_000);
            Assert.Empty(controller.FenceExpired(_image));
            Apply(controller.Heartbeat(_image, Heartbeat(2, other, _image.LastOffset))); // broker 2 keeps heartbeating
        }

        // Broker 1 was last heard 10 s ago: fenced, and only it.
        _time.Advance(2_000);
        AppendAll(controller.FenceExpired(_image));
        Assert.Equal((true, false), (_image.Brokers[1].Fenced, _image.Brokers[2].Fenced));
        Assert.Empty(controller.FenceExpired(_image));

        var back = Apply(controller.Heartbeat(_image, Heartbeat(1, epoch, _image.LastOffset)));
        Assert.False(back.IsFenced);
        Assert.False(_image.Brokers[1].Fenced);
    }

    [Fact]
    public void AControllerThatWasItselfStalledJudgesNoSessionByTheStall()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var epoch = Apply(controller.Register(_image, Registration(1))).BrokerEpoch;
        Apply(controller.Heartbeat(_image, Heartbeat(1, epoch, epoch)));
        Assert.Empty(controller.FenceExpired(_image));

        // The controller checks nothing for 30 s (a paused process): the broker could not have been heard either.
        _time.Advance(30_000);
        Assert.Empty(controller.FenceExpired(_image));

        // From then on the session is judged again: silence for a whole session fences.
        _time.Advance(SessionMs / 2);
        Assert.Empty(controller.FenceExpired(_image));
        _time.Advance(SessionMs / 2);
        Assert.Single(controller.FenceExpired(_image));
    }

    [Fact]
    public void ANewActiveControllerGivesEveryBrokerAFullSessionExceptTheOneRestartingInItsOwnProcess()
    {
        var old = new QuorumController(Cluster, SessionMs, _time);
        var epoch1 = Apply(old.Register(_image, Registration(1))).BrokerEpoch;
        Apply(old.Heartbeat(_image, Heartbeat(1, epoch1, epoch1)));
        var epoch2 = Apply(old.Register(_image, Registration(2))).BrokerEpoch;
        Apply(old.Heartbeat(_image, Heartbeat(2, epoch2, epoch2)));
        _time.Advance(60_000);

        var controller = new QuorumController(Cluster, SessionMs, _time);
        controller.Activate(_image, restartingBrokerId: 1);

        // Broker 1 is this process's own broker, starting again: its new incarnation registers at once.
        Assert.Equal(ErrorCode.None, (ErrorCode)Apply(controller.Register(_image, Registration(1))).ErrorCode);

        // Broker 2 may be alive and heartbeating to no one yet: a full session before it can be fenced or replaced.
        Assert.Equal(ErrorCode.DuplicateBrokerRegistration, (ErrorCode)controller.Register(_image, Registration(2)).Response.ErrorCode);
        _time.Advance(SessionMs - 1);
        Assert.DoesNotContain(controller.FenceExpired(_image).Cast<BrokerRegistrationChangeRecord>(), r => r.BrokerId == 2);
        _time.Advance(1);
        Assert.Contains(controller.FenceExpired(_image).Cast<BrokerRegistrationChangeRecord>(), r => r.BrokerId == 2);
    }

    [Fact]
    public void ABrokerAskingToBeFencedOrToShutDownIsMarkedSo()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var epoch = Apply(controller.Register(_image, Registration(1))).BrokerEpoch;
        Apply(controller.Heartbeat(_image, Heartbeat(1, epoch, epoch)));

        var shutdown = Heartbeat(1, epoch, _image.LastOffset);
        shutdown.WantShutDown = true;
        var answer = Apply(controller.Heartbeat(_image, shutdown));
        Assert.True(answer.ShouldShutDown);
        Assert.True(_image.Brokers[1].InControlledShutdown);

        var fence = Heartbeat(1, epoch, _image.LastOffset);
        fence.WantFence = true;
        Assert.True(Apply(controller.Heartbeat(_image, fence)).IsFenced);
        Assert.True(_image.Brokers[1].Fenced);

        // Wanting to stay fenced keeps it fenced however caught up it is.
        Assert.True(Apply(controller.Heartbeat(_image, fence)).IsFenced);
    }

    [Fact]
    public void ProducerIdBlocksFollowEachOtherAndGoOnlyToARegisteredBrokerAtItsEpoch()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var epoch1 = Apply(controller.Register(_image, Registration(1))).BrokerEpoch;
        var epoch2 = Apply(controller.Register(_image, Registration(2))).BrokerEpoch;

        var first = Apply(controller.AllocateProducerIds(_image, new AllocateProducerIdsRequest { BrokerId = 1, BrokerEpoch = epoch1 }));
        var second = Apply(controller.AllocateProducerIds(_image, new AllocateProducerIdsRequest { BrokerId = 2, BrokerEpoch = epoch2 }));
        Assert.Equal((ErrorCode.None, 0L, QuorumController.ProducerIdBlockSize), ((ErrorCode)first.ErrorCode, first.ProducerIdStart, first.ProducerIdLen));
        Assert.Equal((ErrorCode.None, (long)QuorumController.ProducerIdBlockSize), ((ErrorCode)second.ErrorCode, second.ProducerIdStart));
        Assert.Equal(2L * QuorumController.ProducerIdBlockSize, _image.NextProducerId);

        // An old epoch, or a broker never registered, gets nothing and moves nothing.
        var stale = controller.AllocateProducerIds(_image, new AllocateProducerIdsRequest { BrokerId = 1, BrokerEpoch = epoch1 - 1 });
        var stranger = controller.AllocateProducerIds(_image, new AllocateProducerIdsRequest { BrokerId = 7, BrokerEpoch = epoch1 });
        Assert.Equal((ErrorCode.StaleBrokerEpoch, 0), ((ErrorCode)stale.Response.ErrorCode, stale.Records.Count));
        Assert.Equal((ErrorCode.StaleBrokerEpoch, 0), ((ErrorCode)stranger.Response.ErrorCode, stranger.Records.Count));
    }

    [Fact]
    public void NewPartitionsLeadFromTheirFirstReplicaThatCanLeadAndManualAssignmentsAreChecked()
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        foreach (var id in new[] { 1, 2, 3 })
        {
            var epoch = Apply(controller.Register(_image, Registration(id))).BrokerEpoch;
            Apply(controller.Heartbeat(_image, Heartbeat(id, epoch, _image.LastOffset)));
        }

        Append(new BrokerRegistrationChangeRecord { BrokerId = 2, BrokerEpoch = _image.Brokers[2].Epoch, Fenced = 1 });

        // Placement uses only brokers that can take replicas: two of three are left.
        var (placed, error, message) = PartitionAssigner.Place(_image, partitions: 4, replicationFactor: 2, new Random(7));
        Assert.Equal(ErrorCode.None, error);
        Assert.All(placed!, replicas => Assert.Equal([1, 3], replicas.Order()));
        (placed, error, message) = PartitionAssigner.Place(_image, partitions: 1, replicationFactor: 3, new Random(7));
        Assert.Null(placed);
        Assert.Equal(ErrorCode.InvalidReplicationFactor, error);
        Assert.Contains("only 2 broker(s) are registered", message, StringComparison.Ordinal);

        // A fenced replica is out of the ISR and does not lead, even when it comes first.
        var record = PartitionAssigner.NewPartition(_image, Guid.NewGuid(), 0, [2, 3, 1]);
        Assert.Equal([2, 3, 1], record.Replicas);
        Assert.Equal([3, 1], record.Isr);
        Assert.Equal(3, record.Leader);

        Assert.Null(PartitionAssigner.CheckManual(_image, [[1, 2], [2, 3]]));
        Assert.Contains("empty replica list", PartitionAssigner.CheckManual(_image, [[1], []]), StringComparison.Ordinal);
        Assert.Contains("broker 1 more than once", PartitionAssigner.CheckManual(_image, [[1, 1]]), StringComparison.Ordinal);
        Assert.Contains("broker 9, but no such broker is registered", PartitionAssigner.CheckManual(_image, [[1, 9]]), StringComparison.Ordinal);
        Assert.Contains("which have 2 replica(s)", PartitionAssigner.CheckManual(_image, [[1, 3], [1]]), StringComparison.Ordinal);
        Assert.Contains("which have 3 replica(s)", PartitionAssigner.CheckManual(_image, [[1, 3]], firstPartition: 4, expectedReplicas: 3), StringComparison.Ordinal);
        Assert.Contains("for partition 5 are fenced", PartitionAssigner.CheckManual(_image, [[1], [2]], firstPartition: 4), StringComparison.Ordinal);
    }

    [Fact]
    public void AFencedLeaderIsReplacedFromTheIsrAndALeaderlessPartitionGetsOneWhenAnIsrMemberReturns()
    {
        var (controller, epochs, _) = ThreeBrokersAndATopic(new PartitionRecord { PartitionId = 1, Replicas = [2, 1], Isr = [2], Leader = 2, LeaderEpoch = 0, PartitionEpoch = 0 });

        // Broker 1 asks to be fenced: it leaves partition 0's ISR, and 2 (next in replica order) leads at a new epoch.
        Apply(controller.Heartbeat(_image, new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = epochs[1], CurrentMetadataOffset = _image.LastOffset, WantFence = true }));
        var p0 = _image.Topic("t")!.Partitions[0];
        Assert.Equal((2, 1, 1), (p0.Leader, p0.LeaderEpoch, p0.PartitionEpoch));
        Assert.Equal([2, 3], p0.Isr);

        // Broker 2's session runs out: partition 0 moves to 3; partition 1 has no one else in its ISR and goes leaderless.
        _time.Advance(SessionMs / 2);
        Apply(controller.Heartbeat(_image, Heartbeat(3, epochs[3], _image.LastOffset)));
        _time.Advance(SessionMs / 2 + 1);
        AppendAll(controller.FenceExpired(_image));
        Assert.Equal((3, 2), (_image.Topic("t")!.Partitions[0].Leader, _image.Topic("t")!.Partitions[0].LeaderEpoch));
        Assert.Equal([3], _image.Topic("t")!.Partitions[0].Isr);
        var p1 = _image.Topic("t")!.Partitions[1];
        Assert.Equal((-1, 1), (p1.Leader, p1.LeaderEpoch));
        Assert.Equal([2], p1.Isr); // never empty: it comes back with broker 2

        // Broker 2 heartbeats again and is unfenced: it leads partition 1 again.
        Apply(controller.Heartbeat(_image, Heartbeat(2, epochs[2], _image.LastOffset)));
        Assert.Equal((2, 2), (_image.Topic("t")!.Partitions[1].Leader, _image.Topic("t")!.Partitions[1].LeaderEpoch));
    }

    [Fact]
    public void AlterPartitionIsAcceptedOnlyFromTheLeaderAtItsEpochsAndOnlyForEligibleReplicas()
    {
        var (controller, epochs, topicId) = ThreeBrokersAndATopic();
        AlterPartitionRequest Request(int broker, int leaderEpoch, int partitionEpoch, params int[] isr) => new()
        {
            BrokerId = broker,
            BrokerEpoch = epochs[broker],
            Topics = [new() { TopicId = topicId, Partitions = [new() { PartitionIndex = 0, LeaderEpoch = leaderEpoch, PartitionEpoch = partitionEpoch, NewIsrWithEpochs = [.. isr.Select(b => new AlterPartitionRequest.BrokerState { BrokerId = b, BrokerEpoch = epochs[b] })] }] }],
        };
        ErrorCode Error(AlterPartitionResponse response) => (ErrorCode)response.Topics.Single().Partitions.Single().ErrorCode;

        var shrunk = Apply(controller.AlterPartition(_image, Request(1, 0, 0, 1, 2)));
        Assert.Equal(ErrorCode.None, Error(shrunk));
        Assert.Equal(1, shrunk.Topics[0].Partitions[0].PartitionEpoch);
        Assert.Equal([1, 2], shrunk.Topics[0].Partitions[0].Isr);
        Assert.Equal([1, 2], _image.Topic("t")!.Partitions[0].Isr);

        Assert.Equal(ErrorCode.InvalidUpdateVersion, Error(controller.AlterPartition(_image, Request(1, 0, 0, 1)).Response));
        Assert.Equal(ErrorCode.FencedLeaderEpoch, Error(controller.AlterPartition(_image, Request(1, 3, 1, 1)).Response));
        Assert.Equal(ErrorCode.NotLeaderOrFollower, Error(controller.AlterPartition(_image, Request(2, 0, 1, 2)).Response));
        Assert.Equal(ErrorCode.InvalidRequest, Error(controller.AlterPartition(_image, Request(1, 0, 1, 2)).Response)); // without the leader
        var stale = Request(1, 0, 1, 1);
        stale.BrokerEpoch = epochs[1] - 1;
        Assert.Equal(ErrorCode.StaleBrokerEpoch, (ErrorCode)controller.AlterPartition(_image, stale).Response.ErrorCode);

        // A fenced broker may not join; once unfenced, at its epoch, it may.
        Append(new BrokerRegistrationChangeRecord { BrokerId = 3, BrokerEpoch = epochs[3], Fenced = 1 });
        var refused = controller.AlterPartition(_image, Request(1, 0, 1, 1, 2, 3));
        Assert.Equal((ErrorCode.IneligibleReplica, 0), (Error(refused.Response), refused.Records.Count));
        Append(new BrokerRegistrationChangeRecord { BrokerId = 3, BrokerEpoch = epochs[3], Fenced = 0 });
        Assert.Equal(ErrorCode.None, Error(Apply(controller.AlterPartition(_image, Request(1, 0, 1, 1, 2, 3)))));
        Assert.Equal([1, 2, 3], _image.Topic("t")!.Partitions[0].Isr);
    }

    [Fact]
    public void AControlledShutdownMovesLeadershipAtOnceAndFreesTheBrokerToRegisterAgain()
    {
        var (controller, epochs, _) = ThreeBrokersAndATopic();
        var leaving = controller.Heartbeat(_image, new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = epochs[1], CurrentMetadataOffset = _image.LastOffset, WantShutDown = true });
        Apply(leaving);
        Assert.True(leaving.Response.ShouldShutDown);
        Assert.Equal((true, true), (_image.Brokers[1].Fenced, _image.Brokers[1].InControlledShutdown));
        Assert.Equal(2, _image.Topic("t")!.Partitions[0].Leader);
        Assert.DoesNotContain(1, _image.Topic("t")!.Partitions[0].Isr);

        // Its session ended with the shutdown: the next incarnation registers without waiting it out.
        var again = Apply(controller.Register(_image, Registration(1)));
        Assert.Equal(ErrorCode.None, (ErrorCode)again.ErrorCode);
    }

    [Fact]
    public void UncleanElectionOnlyWhereTheTopicAllowsItAndPreferredLeadersAreRestored()
    {
        var allowed = false;
        var controller = new QuorumController(Cluster, SessionMs, _time, (_, topic) => allowed && topic.Name == "t");
        var epochs = new Dictionary<int, long>();
        foreach (var id in new[] { 1, 2 })
        {
            epochs[id] = Apply(controller.Register(_image, Registration(id))).BrokerEpoch;
            Apply(controller.Heartbeat(_image, Heartbeat(id, epochs[id], _image.LastOffset)));
        }

        var topicId = Guid.NewGuid();
        AppendAll([
            new TopicRecord { Name = "t", TopicId = topicId },
            new PartitionRecord { PartitionId = 0, TopicId = topicId, Replicas = [1, 2], Isr = [1], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0 },
        ]);

        // Broker 1, alone in the ISR, is fenced: the partition goes leaderless, since 2 is out of sync.
        Apply(controller.Heartbeat(_image, new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = epochs[1], CurrentMetadataOffset = _image.LastOffset, WantFence = true }));
        Assert.Equal(-1, _image.Topic("t")!.Partitions[0].Leader);
        AppendAll(controller.Maintain(_image, balanceLeaders: false));
        Assert.Equal(-1, _image.Topic("t")!.Partitions[0].Leader);

        // Once the topic allows it, the periodic check elects 2, which becomes the whole ISR.
        allowed = true;
        AppendAll(controller.Maintain(_image, balanceLeaders: false));
        Assert.Equal(2, _image.Topic("t")!.Partitions[0].Leader);
        Assert.Equal([2], _image.Topic("t")!.Partitions[0].Isr);

        // 1 comes back and catches up (an ISR change adds it); the rebalance gives it back its preferred leadership.
        Apply(controller.Heartbeat(_image, new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = epochs[1], CurrentMetadataOffset = _image.LastOffset }));
        var p0 = _image.Topic("t")!.Partitions[0];
        Append(new PartitionChangeRecord { TopicId = topicId, PartitionId = 0, Isr = [2, 1], Leader = PartitionImage.PartitionChangeNoLeaderChange });
        Assert.Empty(controller.Maintain(_image, balanceLeaders: false));
        AppendAll(controller.Maintain(_image, balanceLeaders: true));
        Assert.Equal((1, p0.LeaderEpoch + 1), (_image.Topic("t")!.Partitions[0].Leader, _image.Topic("t")!.Partitions[0].LeaderEpoch));
    }

    /// <summary>
    /// Brokers 1, 2 and 3 registered and unfenced, and topic "t" whose partition 0 has all three (1 leading), plus
    /// <paramref name="more"/> partitions.
    /// </summary>
    private (QuorumController Controller, Dictionary<int, long> Epochs, Guid TopicId) ThreeBrokersAndATopic(params PartitionRecord[] more)
    {
        var controller = new QuorumController(Cluster, SessionMs, _time);
        var epochs = new Dictionary<int, long>();
        foreach (var id in new[] { 1, 2, 3 })
        {
            epochs[id] = Apply(controller.Register(_image, Registration(id))).BrokerEpoch;
            Apply(controller.Heartbeat(_image, Heartbeat(id, epochs[id], _image.LastOffset)));
        }

        var topicId = Guid.NewGuid();
        AppendAll([
            new TopicRecord { Name = "t", TopicId = topicId },
            new PartitionRecord { PartitionId = 0, TopicId = topicId, Replicas = [1, 2, 3], Isr = [1, 2, 3], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0 },
            .. more.Select(p => { p.TopicId = topicId; return p; }),
        ]);
        return (controller, epochs, topicId);
    }

    private static BrokerRegistrationRequest Registration(int id, Guid? incarnation = null) => new()
    {
        BrokerId = id,
        ClusterId = Cluster,
        IncarnationId = incarnation ?? Guid.NewGuid(),
        Rack = "rack-a",
        Listeners = [new BrokerRegistrationRequest.Listener { Name = "PLAINTEXT", Host = "127.0.0.1", Port = 19092 }],
        Features = [new BrokerRegistrationRequest.Feature { Name = "metadata.version", MinSupportedVersion = 7, MaxSupportedVersion = 25 }],
    };

    private static BrokerHeartbeatRequest Heartbeat(int id, long epoch, long metadataOffset) =>
        new() { BrokerId = id, BrokerEpoch = epoch, CurrentMetadataOffset = metadataOffset };

    private T Apply<T>(ControllerResult<T> result)
    {
        AppendAll(result.Records);
        return result.Response;
    }

    private void Append(IVersionedMessage record) => AppendAll([record]);

    private void AppendAll(IReadOnlyList<IVersionedMessage> records)
    {
        foreach (var record in records)
        {
            _image = _image.Apply(record, _image.LastOffset + 1);
        }
    }
}
