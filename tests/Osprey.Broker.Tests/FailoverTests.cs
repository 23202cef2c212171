using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Replication;
using Osprey.Protocol.Messages;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// ISR changes and leader failover on a three-node cluster: a stopped leader is replaced by an in-sync follower and an
/// idempotent producer neither loses nor repeats a record; the ISR shrinks when followers stop fetching and grows again
/// when they catch up; and with min.insync.replicas 2, acks=all is refused once only the leader is left.
/// </summary>
public class FailoverTests
{
    private const string Topic = "failover";

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStoppedLeaderIsReplacedAndAnIdempotentProducerLosesAndRepeatsNothing()
    {
        await using var cluster = await TestCluster.StartAsync();
        await CreateTopicAsync(cluster, minInsync: 2);
        var bootstrap = string.Join(",", cluster.Running.Select(n => $"127.0.0.1:{n.Port}"));
        var first = Partition(cluster).Leader;

        const int Count = 300;
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 2,
            MessageTimeoutMs = 90_000,
            RetryBackoffMs = 100,
        }).Build())
        {
            var sent = new List<Task<DeliveryResult<Null, string>>>();
            for (var i = 0; i < Count; i++)
            {
                sent.Add(producer.ProduceAsync(Topic, new Message<Null, string> { Value = $"v{i}" }, TestContext.Current.CancellationToken));
                if (i == Count / 3)
                {
                    await Task.WhenAll(sent);
                    await cluster.StopNodeAsync(first);
                }
                else if (i % 20 == 0)
                {
                    await Task.Delay(10, TestContext.Current.CancellationToken);
                }
            }

            var results = await Task.WhenAll(sent);
            Assert.All(results, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
        }

        var partition = Partition(cluster);
        Assert.NotEqual(first, partition.Leader);
        Assert.True(partition.LeaderEpoch >= 1);

        var read = new List<string>();
        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "failover-reader", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false }).Build();
        consumer.Assign(new TopicPartitionOffset(Topic, 0, 0));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (read.Count < Count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } message)
            {
                read.Add(message.Message.Value);
            }
        }

        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"v{i}"), read);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheIsrShrinksWhenFollowersStopFetchingAndGrowsWhenOneCatchesUp()
    {
        // No replica fetchers run: the followers fall behind the leader as soon as it has a record.
        await using var cluster = await TestCluster.StartAsync(replicaFetchers: false, settings: ("replica.lag.time.max.ms", "1000"));
        await CreateTopicAsync(cluster, minInsync: 1);
        var partition = Partition(cluster);
        var leader = cluster.Nodes[partition.Leader]!;
        using var connection = await RawConnection.OpenAsync(leader.Port);
        Assert.Equal(0, (await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch("behind"), acks: 1)).ErrorCode);

        // After the lag time the leader asks the controller to drop both; every node's metadata shows it.
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic(Topic)!.Partitions[0].Isr.SequenceEqual([partition.Leader])));
        Assert.Equal(1, leader.Services.GetRequiredService<ReplicaManager>().Get(Topic, 0)!.HighWatermark);

        // One follower catches up by hand (a replica fetch at the leader's end) and is taken back.
        var follower = partition.Replicas.First(r => r != partition.Leader);
        var topicId = TestCluster.Quorum(leader).Image.Topic(Topic)!.TopicId;
        var brokerEpoch = TestCluster.Quorum(leader).Image.Brokers[follower].Epoch;
        var currentEpoch = TestCluster.Quorum(leader).Image.Topic(Topic)!.Partitions[0].LeaderEpoch;
        var fetch = new FetchRequest
        {
            ReplicaState = new() { ReplicaId = follower, ReplicaEpoch = brokerEpoch },
            Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, FetchOffset = 1, LastFetchedEpoch = currentEpoch, CurrentLeaderEpoch = currentEpoch, PartitionMaxBytes = 1 << 20 }] }],
        };
        var answer = await IdempotenceTests.CallAsync<FetchResponse>(connection, fetch, 16);
        Assert.Equal(0, answer.Responses.Single().Partitions.Single().ErrorCode);
        await TestWait.UntilAsync(() => TestCluster.Quorum(leader).Image.Topic(Topic)!.Partitions[0].Isr.Order().SequenceEqual(new[] { partition.Leader, follower }.Order()));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task WithOnlyTheLeaderLeftAcksAllIsRefusedAndAcksOneIsNot()
    {
        // Five nodes, so that the metadata quorum (every node is a voter) outlives the two stopped followers.
        await using var cluster = await TestCluster.StartAsync(nodes: 5);
        await CreateTopicAsync(cluster, minInsync: 2);
        var partition = Partition(cluster);
        var leader = cluster.Nodes[partition.Leader]!;
        foreach (var follower in partition.Replicas.Where(r => r != partition.Leader))
        {
            await cluster.StopNodeAsync(follower);
        }

        // The stopped followers are fenced and leave the ISR; the leader, alone in it, keeps leading.
        await TestWait.UntilAsync(() => TestCluster.Quorum(leader).Image.Topic(Topic)!.Partitions[0].Isr.SequenceEqual([partition.Leader]));
        await TestWait.UntilAsync(() => leader.Services.GetRequiredService<ReplicaManager>().Get(Topic, 0)!.Isr.Length == 1);
        using var connection = await RawConnection.OpenAsync(leader.Port);
        var refused = await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch("all"), acks: -1);
        Assert.Equal(ErrorCode.NotEnoughReplicas, (ErrorCode)refused.ErrorCode);
        var accepted = await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch("one"), acks: 1);
        Assert.Equal(ErrorCode.None, (ErrorCode)accepted.ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStoppingBrokerHandsItsLeadershipsOverBeforeItGoes()
    {
        await using var cluster = await TestCluster.StartAsync();
        await CreateTopicAsync(cluster, minInsync: 1, partitions: 3);
        var controller = await cluster.ActiveControllerAsync();
        var topic = TestCluster.Quorum(controller).Image.Topic(Topic)!;
        var stopping = topic.Partitions.Values.Select(p => p.Leader).First(l => l != controller.Options.NodeId);

        await cluster.StopNodeAsync(stopping);

        // Already when it has stopped (long before its session would run out), the controller has moved its
        // leaderships to in-sync replicas and taken it out of every ISR.
        var image = TestCluster.Quorum(controller).Image;
        Assert.True(image.Brokers[stopping].InControlledShutdown);
        Assert.All(image.Topic(Topic)!.Partitions.Values, p =>
        {
            Assert.NotEqual(stopping, p.Leader);
            Assert.True(p.Leader >= 0);
            Assert.DoesNotContain(stopping, p.Isr);
        });

        // Back, it registers anew, catches up and is taken back into the ISRs.
        await cluster.StartNodeAsync(stopping);
        await TestWait.UntilAsync(() => TestCluster.Quorum(controller).Image.Topic(Topic)!.Partitions.Values.All(p => p.Isr.Contains(stopping)));

        // A preferred election gives it back the leadership of the partitions it is the first replica of.
        using var admin = await RawConnection.OpenAsync(cluster.Nodes[stopping]!.Port);
        var elected = await IdempotenceTests.CallAsync<ElectLeadersResponse>(admin, new ElectLeadersRequest { ElectionType = 0, TopicPartitions = null, TimeoutMs = 30_000 }, 2);
        Assert.Equal(0, elected.ErrorCode);
        await TestWait.UntilAsync(() => TestCluster.Quorum(controller).Image.Topic(Topic)!.Partitions.Values.All(p => p.Leader == p.Replicas[0]));
        var again = await IdempotenceTests.CallAsync<ElectLeadersResponse>(admin, new ElectLeadersRequest { ElectionType = 0, TopicPartitions = [new() { Topic = Topic, Partitions = [0] }], TimeoutMs = 30_000 }, 2);
        Assert.Equal(ErrorCode.ElectionNotNeeded, (ErrorCode)again.ReplicaElectionResults.Single().PartitionResult.Single().ErrorCode);
    }

    private static Metadata.PartitionImage Partition(TestCluster cluster) =>
        TestCluster.Quorum(cluster.Running.First()).Image.Topic(Topic)!.Partitions[0];

    private static async Task CreateTopicAsync(TestCluster cluster, int minInsync, int partitions = 1)
    {
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == cluster.Running.Count()));
        var controller = await cluster.ActiveControllerAsync();
        using (var admin = await RawConnection.OpenAsync(controller.Port))
        {
            var created = await IdempotenceTests.CallAsync<CreateTopicsResponse>(admin, new CreateTopicsRequest
            {
                Topics = [new() { Name = Topic, NumPartitions = partitions, ReplicationFactor = 3, Configs = [new() { Name = "min.insync.replicas", Value = minInsync.ToString(System.Globalization.CultureInfo.InvariantCulture) }] }],
                TimeoutMs = 30_000,
            }, 7);
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic(Topic) is { } t
            && t.Partitions.Values.All(p => !p.Replicas.Contains(n.Options.NodeId) || n.Services.GetRequiredService<ReplicaManager>().Get(Topic, p.PartitionId) is { LeaderId: >= 0 } r
                && (r.LeaderId != n.Options.NodeId || r.IsLeader))));
    }
}
