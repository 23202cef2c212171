using Osprey.Protocol.Messages;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// The leader's side of replication on a three-node cluster, driven by hand: followers' fetches (raw, with
/// ReplicaState) move the high watermark, consumers read only below it, acks=all waits for every in-sync replica,
/// a follower whose log parts from the leader's is told where, and brokers that do not lead send clients to the one
/// that does.
/// </summary>
public class ReplicaLeaderPathTests
{
    private const string Topic = "led";

    private Guid _topicId;

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task FollowerFetchesMoveTheHighWatermarkThatConsumersAndAcksAllWaitFor()
    {
        // The test plays both followers itself.
        await using var cluster = await TestCluster.StartAsync(replicaFetchers: false);
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == 3));
        var controller = await cluster.ActiveControllerAsync();
        using (var admin = await RawConnection.OpenAsync(controller.Port))
        {
            var created = await IdempotenceTests.CallAsync<CreateTopicsResponse>(admin, new CreateTopicsRequest { Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 3 }], TimeoutMs = 30_000 }, 7);
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic(Topic) is not null));
        var partition = TestCluster.Quorum(controller).Image.Topic(Topic)!.Partitions[0];
        _topicId = TestCluster.Quorum(controller).Image.Topic(Topic)!.TopicId;
        var leader = cluster.Nodes[partition.Leader]!;
        var (first, second) = (partition.Replicas.First(r => r != partition.Leader), partition.Replicas.Last(r => r != partition.Leader));
        long BrokerEpoch(int id) => TestCluster.Quorum(leader).Image.Brokers[id].Epoch;
        await TestWait.UntilAsync(() => leader.Services.GetService(typeof(Osprey.Broker.Replication.ReplicaManager)) is Osprey.Broker.Replication.ReplicaManager m && m.Get(Topic, 0)?.IsLeader == true);

        // A broker that does not lead sends the producer to the one that does.
        using (var elsewhere = await RawConnection.OpenAsync(cluster.Nodes[first]!.Port))
        {
            var refused = await IdempotenceTests.CallAsync<ProduceResponse>(elsewhere, Produce(acks: 1, "x"), 10);
            var answer = refused.Responses.Single().PartitionResponses.Single();
            Assert.Equal(ErrorCode.NotLeaderOrFollower, (ErrorCode)answer.ErrorCode);
            Assert.Equal((partition.Leader, 0), (answer.CurrentLeader.LeaderId, answer.CurrentLeader.LeaderEpoch));
            Assert.Equal(leader.Port, refused.NodeEndpoints.Single(n => n.NodeId == partition.Leader).Port);

            // Versions without the leader's fields get the error alone (and the connection stays open).
            var older = await IdempotenceTests.CallAsync<ProduceResponse>(elsewhere, Produce(acks: 1, "x"), 9);
            Assert.Equal(ErrorCode.NotLeaderOrFollower, (ErrorCode)older.Responses.Single().PartitionResponses.Single().ErrorCode);
            var olderFetch = await IdempotenceTests.CallAsync<FetchResponse>(elsewhere, new FetchRequest
            {
                Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
            }, 11);
            Assert.Equal(ErrorCode.NotLeaderOrFollower, (ErrorCode)olderFetch.Responses.Single().Partitions.Single().ErrorCode);
            var newerFetch = await IdempotenceTests.CallAsync<FetchResponse>(elsewhere, ConsumerFetch(0), 16);
            Assert.Equal(partition.Leader, newerFetch.Responses.Single().Partitions.Single().CurrentLeader.LeaderId);
            Assert.Equal(leader.Port, newerFetch.NodeEndpoints.Single().Port);
        }

        using var producer = await RawConnection.OpenAsync(leader.Port);
        using var consumer = await RawConnection.OpenAsync(leader.Port);
        using var follower1 = await RawConnection.OpenAsync(leader.Port);
        using var follower2 = await RawConnection.OpenAsync(leader.Port);

        // acks=1: appended at once, but no consumer sees it until every in-sync replica has it.
        var appended = await IdempotenceTests.CallAsync<ProduceResponse>(producer, Produce(acks: 1, "one"), 10);
        Assert.Equal((0, 0L), (appended.Responses[0].PartitionResponses[0].ErrorCode, appended.Responses[0].PartitionResponses[0].BaseOffset));
        var before = Single(await IdempotenceTests.CallAsync<FetchResponse>(consumer, ConsumerFetch(0), 16));
        Assert.Equal((0L, 0), (before.HighWatermark, before.Records?.Length ?? 0));

        // The followers fetch it; each next fetch reports how far they got, and the high watermark follows the slower.
        var replicated = Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower1, ReplicaFetch(first, BrokerEpoch(first), 0, -1), 16));
        Assert.True(replicated.Records?.Length > 0);
        Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower1, ReplicaFetch(first, BrokerEpoch(first), 1, 0), 16));
        Assert.Equal(0L, Single(await IdempotenceTests.CallAsync<FetchResponse>(consumer, ConsumerFetch(0), 16)).HighWatermark);
        Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower2, ReplicaFetch(second, BrokerEpoch(second), 0, -1), 16));
        var caughtUp = Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower2, ReplicaFetch(second, BrokerEpoch(second), 1, 0), 16));
        Assert.Equal(1L, caughtUp.HighWatermark);
        var visible = Single(await IdempotenceTests.CallAsync<FetchResponse>(consumer, ConsumerFetch(0), 16));
        Assert.Equal(1L, visible.HighWatermark);
        Assert.True(visible.Records?.Length > 0);

        // acks=all is answered only once both followers have fetched past the batch.
        await producer.SendAsync(Produce(acks: -1, "two"), 10, 5);
        var pending = producer.ReceiveAsync<ProduceResponse>(10);
        await TestWait.UntilAsync(() => leader.Logs.Get(Topic, 0)!.LogEndOffset == 2);
        Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower1, ReplicaFetch(first, BrokerEpoch(first), 2, 0), 16));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.False(pending.IsCompleted);
        Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower2, ReplicaFetch(second, BrokerEpoch(second), 2, 0), 16));
        var acked = (await pending).Body.Responses[0].PartitionResponses[0];
        Assert.Equal((0, 1L), (acked.ErrorCode, acked.BaseOffset));

        // A follower whose last batch was of an epoch the leader never had is told where their logs part.
        var diverging = Fetched(await IdempotenceTests.CallAsync<FetchResponse>(follower1, ReplicaFetch(first, BrokerEpoch(first), 5, 3), 16));
        Assert.Equal((0, 2L), (diverging.DivergingEpoch.Epoch, diverging.DivergingEpoch.EndOffset));
        Assert.Equal(0, diverging.Records?.Length ?? 0);

        // A consumer with a newer leader epoch than the leader knows, or an older one, is refused.
        var unknown = Single(await IdempotenceTests.CallAsync<FetchResponse>(consumer, ConsumerFetch(0, currentLeaderEpoch: 1), 16));
        Assert.Equal(ErrorCode.UnknownLeaderEpoch, (ErrorCode)unknown.ErrorCode);
    }

    private static ProduceRequest Produce(short acks, string value) => new()
    {
        Acks = acks,
        TimeoutMs = 30_000,
        TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = FetchSessionTests.Batch(value) }] }],
    };

    private FetchRequest ConsumerFetch(long offset, int currentLeaderEpoch = -1) => new()
    {
        MaxWaitMs = 0,
        MinBytes = 0,
        Topics = [new() { TopicId = _topicId, Partitions = [new() { Partition = 0, FetchOffset = offset, CurrentLeaderEpoch = currentLeaderEpoch, PartitionMaxBytes = 1 << 20 }] }],
    };

    private FetchRequest ReplicaFetch(int replicaId, long brokerEpoch, long offset, int lastFetchedEpoch) => new()
    {
        ReplicaState = new() { ReplicaId = replicaId, ReplicaEpoch = brokerEpoch },
        MaxWaitMs = 0,
        MinBytes = 0,
        Topics = [new() { TopicId = _topicId, Partitions = [new() { Partition = 0, FetchOffset = offset, LastFetchedEpoch = lastFetchedEpoch, CurrentLeaderEpoch = 0, PartitionMaxBytes = 1 << 20 }] }],
    };

    private static FetchResponse.PartitionData Single(FetchResponse response)
    {
        Assert.Equal(0, response.ErrorCode);
        return response.Responses.Single().Partitions.Single();
    }

    private static FetchResponse.PartitionData Fetched(FetchResponse response)
    {
        var partition = Single(response);
        Assert.Equal(ErrorCode.None, (ErrorCode)partition.ErrorCode);
        return partition;
    }
}
