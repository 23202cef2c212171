using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Replication;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Tests;

/// <summary>
/// Followers copy their leaders: a real producer's acks=all writes to RF=3 partitions are answered once every replica
/// has them, every replica ends up with the same bytes below the high watermark, and a follower that comes back with a
/// tail the leader never had (an epoch it never led) truncates it by epochs and copies the leader's log instead.
/// </summary>
public class ReplicationTests
{
    private const string Topic = "copied";

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AcksAllOnThreeReplicasLeavesTheSameRecordsOnEveryReplica()
    {
        await using var cluster = await StartWithTopicAsync(partitions: 2);
        var bootstrap = string.Join(",", cluster.Running.Select(n => $"127.0.0.1:{n.Port}"));
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, Acks = Acks.All, LingerMs = 5, MessageTimeoutMs = 60_000 }).Build())
        {
            var sent = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
                producer.ProduceAsync(new TopicPartition(Topic, i % 2), new Message<string, string> { Key = $"k{i}", Value = $"value {i}" })));
            Assert.All(sent, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
        }

        await AssertReplicasAgreeAsync(cluster, partitions: 2, expectedEnd: 100);

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "copied-reader", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false }).Build();
        consumer.Assign([new TopicPartitionOffset(Topic, 0, 0), new TopicPartitionOffset(Topic, 1, 0)]);
        var read = new HashSet<string>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (read.Count < 200 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } message)
            {
                read.Add(message.Message.Value);
            }
        }

        Assert.Equal(200, read.Count);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AFollowerWithATailOfAnEpochTheLeaderNeverHadTruncatesItAndCatchesUp()
    {
        await using var cluster = await StartWithTopicAsync(partitions: 1);
        var partition = TestCluster.Quorum(cluster.Nodes[1]!).Image.Topic(Topic)!.Partitions[0];
        var leader = cluster.Nodes[partition.Leader]!;
        var followerId = partition.Replicas.First(r => r != partition.Leader);
        using (var connection = await RawConnection.OpenAsync(leader.Port))
        {
            for (var i = 0; i < 3; i++)
            {
                var written = await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch($"kept {i}"), acks: -1);
                Assert.Equal(0, written.ErrorCode);
            }
        }

        await AssertReplicasAgreeAsync(cluster, partitions: 1, expectedEnd: 3);

        // The follower stops; its log gets two batches of epoch 7, which no leader ever had.
        await cluster.StopNodeAsync(followerId);
        await using (var logs = new LogManager(cluster.DataDirectory(followerId), new LogManagerOptions(), TimeProvider.System))
        {
            var log = logs.GetOrCreate(Topic, 0, new LogConfig());
            foreach (var value in new[] { "stray 1", "stray 2" })
            {
                var batch = FetchSessionTests.Batch(value);
                RecordBatch.SetBaseOffset(batch, log.LogEndOffset);
                RecordBatch.SetPartitionLeaderEpoch(batch, 7);
                log.Append(batch, AppendOrigin.Replication);
            }

            Assert.Equal(5, log.LogEndOffset);
            Assert.Equal(7, log.LeaderEpochs.LatestEpoch);
        }

        using (var connection = await RawConnection.OpenAsync(leader.Port))
        {
            var written = await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch("while away"), acks: 1);
            Assert.Equal(0, written.ErrorCode);
        }

        // Back, it finds where its log parts from the leader's, drops the strays and copies the rest.
        await cluster.StartNodeAsync(followerId);
        await AssertReplicasAgreeAsync(cluster, partitions: 1, expectedEnd: 4);
        Assert.Equal([0], cluster.Nodes[followerId]!.Logs.Get(Topic, 0)!.LeaderEpochs.Entries.Select(e => e.Epoch));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AFollowerBehindTheLeadersLogStartStartsOverThere()
    {
        await using var cluster = await StartWithTopicAsync(partitions: 1);
        var partition = TestCluster.Quorum(cluster.Nodes[1]!).Image.Topic(Topic)!.Partitions[0];
        var leader = cluster.Nodes[partition.Leader]!;
        var followerId = partition.Replicas.First(r => r != partition.Leader);

        // The follower stops (leaving the ISR); meanwhile the leader gets three batches and deletes them.
        await cluster.StopNodeAsync(followerId);
        using (var connection = await RawConnection.OpenAsync(leader.Port))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(0, (await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch($"gone {i}"), acks: -1)).ErrorCode);
            }

            var deleted = await IdempotenceTests.CallAsync<DeleteRecordsResponse>(connection, new DeleteRecordsRequest { Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Offset = 3 }] }], TimeoutMs = 30_000 }, 2);
            Assert.Equal((0, 3L), (deleted.Topics[0].Partitions[0].ErrorCode, deleted.Topics[0].Partitions[0].LowWatermark));
            Assert.Equal(0, (await IdempotenceTests.ProduceAsync(connection, Topic, FetchSessionTests.Batch("kept"), acks: -1)).ErrorCode);
        }

        // Back with nothing the leader still has, it starts over at the leader's log start and copies the rest.
        await cluster.StartNodeAsync(followerId);
        await TestWait.UntilAsync(() => cluster.Nodes[followerId]!.Logs.Get(Topic, 0) is { LogEndOffset: 4 });
        Assert.Equal(3, cluster.Nodes[followerId]!.Logs.Get(Topic, 0)!.LogStartOffset);
        await TestWait.UntilAsync(() => TestCluster.Quorum(leader).Image.Topic(Topic)!.Partitions[0].Isr.Contains(followerId));
    }

    private static async Task<TestCluster> StartWithTopicAsync(int partitions)
    {
        var cluster = await TestCluster.StartAsync();
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == 3));
        var controller = await cluster.ActiveControllerAsync();
        using (var admin = await RawConnection.OpenAsync(controller.Port))
        {
            var created = await IdempotenceTests.CallAsync<CreateTopicsResponse>(admin, new CreateTopicsRequest { Topics = [new() { Name = Topic, NumPartitions = partitions, ReplicationFactor = 3 }], TimeoutMs = 30_000 }, 7);
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        await TestWait.UntilAsync(() => cluster.Running.All(n => Enumerable.Range(0, partitions).All(p => n.Services.GetRequiredService<ReplicaManager>().Get(Topic, p) is { } r
            && r.LeaderId >= 0 && (r.LeaderId != n.Options.NodeId || r.IsLeader))));
        return cluster;
    }

    /// <summary>
    /// Waits until every replica of every partition ends at the leader's end offset (<paramref name="expectedEnd"/>)
    /// with the high watermark there too, then compares the bytes of the records below it.
    /// </summary>
    private static async Task AssertReplicasAgreeAsync(TestCluster cluster, int partitions, long expectedEnd)
    {
        for (var p = 0; p < partitions; p++)
        {
            var index = p;
            await TestWait.UntilAsync(() => cluster.Running.All(n => n.Services.GetRequiredService<ReplicaManager>().Get(Topic, index) is { } r
                && r.Log.LogEndOffset == expectedEnd && r.HighWatermark == expectedEnd));
            var copies = cluster.Running.Select(n => (n.Options.NodeId, Bytes: Records(n.Logs.Get(Topic, index)!, expectedEnd))).ToList();
            foreach (var (node, bytes) in copies.Skip(1))
            {
                Assert.True(copies[0].Bytes.AsSpan().SequenceEqual(bytes), $"partition {index}: node {node}'s records differ from node {copies[0].NodeId}'s");
            }
        }
    }

    private static byte[] Records(PartitionLog log, long end)
    {
        var output = new MemoryStream();
        var offset = 0L;
        while (offset < end)
        {
            var read = log.Read(offset, 1 << 20, end, minOneBatch: true);
            if (read.Region is not { } region)
            {
                break;
            }

            var buffer = new byte[region.Length];
            region.CopyTo(buffer);
            output.Write(buffer);
            foreach (var batch in RecordBatch.Enumerate(buffer))
            {
                offset = batch.Header.NextOffset;
            }
        }

        return output.ToArray();
    }
}
