using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Groups;
using Osprey.Broker.Replication;
using Osprey.Broker.Transactions;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

/// <summary>
/// The group and transaction coordinators live with the leadership of their internal topics' partitions on a
/// three-node cluster: FindCoordinator names the leader, the internal topics are replicated (RF 3), and when the
/// coordinator's node stops, another node loads the shard and groups and transactions go on with what was committed.
/// </summary>
public class CoordinatorFailoverTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<TestCluster> StartAsync() => TestCluster.StartAsync(
        3,
        replicaFetchers: true,
        ("offsets.topic.num.partitions", "3"),
        ("transaction.state.log.num.partitions", "3"),
        ("group.initial.rebalance.delay.ms", "0"));

    private static string Bootstrap(TestCluster cluster) => string.Join(",", cluster.Running.Select(n => $"127.0.0.1:{n.Port}"));

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CommittedOffsetsSurviveTheGroupCoordinatorsNodeStopping()
    {
        await using var cluster = await StartAsync();
        await CreateTopicAsync(cluster, "orders", partitions: 2);
        const int Count = 100;
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = Bootstrap(cluster), Acks = Acks.All }).Build())
        {
            for (var i = 0; i < Count; i++)
            {
                await producer.ProduceAsync(new TopicPartition("orders", i % 2), new Message<Null, string> { Value = $"o{i}" }, Ct);
            }
        }

        var seen = new List<string>();
        using (var consumer = Consumer(cluster, "billing"))
        {
            consumer.Subscribe("orders");
            while (seen.Count < Count / 2)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r)
                {
                    seen.Add(r.Message.Value);
                    consumer.Commit(r);
                }
            }

            consumer.Close();
        }

        // The offsets topic is replicated on every node, and the group's coordinator is its partition's leader.
        var node = cluster.Running.First();
        var groups = node.Services.GetRequiredService<GroupCoordinator>();
        var offsets = TestCluster.Quorum(node).Image.Topic(GroupCoordinator.TopicName)!;
        Assert.All(offsets.Partitions.Values, p => Assert.Equal(3, p.Replicas.Length));
        var coordinator = groups.CoordinatorOf("billing");
        Assert.Equal(offsets.Partitions[groups.PartitionFor("billing")].Leader, coordinator);
        Assert.Equal(coordinator, await FindCoordinatorAsync(cluster, "billing", 0));

        await cluster.StopNodeAsync(coordinator);
        var survivor = cluster.Running.First();
        await TestWait.UntilAsync(() => survivor.Services.GetRequiredService<GroupCoordinator>().CoordinatorOf("billing") is var moved && moved >= 0 && moved != coordinator);
        Assert.NotEqual(coordinator, await FindCoordinatorAsync(cluster, "billing", 0));

        // A new member of the group starts where the committed offsets say: no record twice, none skipped.
        using (var consumer = Consumer(cluster, "billing"))
        {
            consumer.Subscribe("orders");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (seen.Count < Count && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r)
                {
                    seen.Add(r.Message.Value);
                }
            }
        }

        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"o{i}").Order(), seen.Order());
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnExactlyOnceCopierGoesOnWhenTheTransactionCoordinatorsNodeStops()
    {
        await using var cluster = await StartAsync();
        await CreateTopicAsync(cluster, "ledger-in", partitions: 2);
        await CreateTopicAsync(cluster, "ledger-out", partitions: 2);
        const int Total = 240;
        using (var plain = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = Bootstrap(cluster), Acks = Acks.All }).Build())
        {
            for (var i = 0; i < Total; i++)
            {
                plain.Produce(new TopicPartition("ledger-in", i % 2), new Message<string, string> { Key = "k", Value = $"{i}" });
            }

            plain.Flush(Ct);
        }

        // The group is one whose coordinator is not the transaction coordinator's node: librdkafka's
        // send_offsets_to_transaction can hang past its timeout when the group coordinator it has cached goes away
        // (librdkafka issues 5456 and 5511), whichever broker it runs against. The group coordinator's move is
        // CommittedOffsetsSurviveTheGroupCoordinatorsNodeStopping's.
        const string TransactionalId = "ledger-copier-tx";
        var node = cluster.Running.First();
        var (transactions, groups) = (node.Services.GetRequiredService<TransactionCoordinator>(), node.Services.GetRequiredService<GroupCoordinator>());
        Assert.Equal(Protocol.ErrorCode.None, await transactions.EnsureStartedAsync(Ct));
        Assert.Equal(Protocol.ErrorCode.None, await groups.EnsureStartedAsync(Ct));
        await TestWait.UntilAsync(() => transactions.CoordinatorOf(TransactionalId) >= 0 && groups.CoordinatorOf("ledger-copier") >= 0);
        var groupId = Enumerable.Range(0, 100).Select(i => $"ledger-copier-{i}").First(g => groups.CoordinatorOf(g) != transactions.CoordinatorOf(TransactionalId));
        var stopped = -1;
        var copiedTransactions = 0;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            using var consumer = TransactionTests.CopierConsumer(Bootstrap(cluster), groupId);
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig
            {
                BootstrapServers = Bootstrap(cluster),
                TransactionalId = TransactionalId,
                TransactionTimeoutMs = 60_000,
            }).Build();
            try
            {
                producer.InitTransactions(TimeSpan.FromSeconds(60));
                consumer.Subscribe("ledger-in");
                var idleSince = DateTime.UtcNow;
                while (DateTime.UtcNow - idleSince < TimeSpan.FromSeconds(8))
                {
                    var batch = TransactionTests.NextBatch(consumer, 10);

                    if (batch.Count == 0)
                    {
                        continue;
                    }

                    idleSince = DateTime.UtcNow;
                    producer.BeginTransaction();
                    foreach (var r in batch)
                    {
                        producer.Produce(new TopicPartition("ledger-out", r.Partition.Value), new Message<string, string> { Key = r.Message.Key, Value = "copy-" + r.Message.Value });
                    }

                    producer.SendOffsetsToTransaction(consumer.Assignment.Select(tp => new TopicPartitionOffset(tp, consumer.Position(tp))), consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(60));
                    if (++copiedTransactions == 4 && stopped < 0)
                    {
                        // The transaction coordinator's node goes away in the middle of a transaction: its records and
                        // offsets are sent, and the commit goes to the coordinator that takes over.
                        stopped = cluster.Running.First().Services.GetRequiredService<TransactionCoordinator>().CoordinatorOf(TransactionalId);
                        await cluster.StopNodeAsync(stopped);
                    }

                    producer.CommitTransaction(TimeSpan.FromSeconds(60));
                }

                consumer.Close();
                break;
            }
            catch (KafkaException e) when (!e.Error.IsFatal || e is KafkaTxnRequiresAbortException)
            {
                // What a real copier does on an error it cannot go on from: start over from the committed offsets.
                TestContext.Current.TestOutputHelper?.WriteLine($"copier attempt {attempt}: {e.Message}");
            }
        }

        Assert.True(stopped > 0, "the transaction coordinator's node was stopped");
        var survivor = cluster.Running.First();
        Assert.NotEqual(stopped, survivor.Services.GetRequiredService<TransactionCoordinator>().CoordinatorOf(TransactionalId));
        var copied = ReadCommitted(cluster, "ledger-out", Total);
        Assert.Equal(Enumerable.Range(0, Total).Select(i => $"copy-{i}").Order(), copied.Order());
    }

    private static IConsumer<Null, string> Consumer(TestCluster cluster, string group) =>
        new ConsumerBuilder<Null, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap(cluster),
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 500,
        }).Build();

    /// <summary>What a read_committed consumer reads from every partition's start until its last stable offset.</summary>
    private static List<string> ReadCommitted(TestCluster cluster, string topic, int expected)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap(cluster),
            GroupId = $"reader-{Guid.NewGuid():N}",
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign([new TopicPartitionOffset(topic, 0, 0), new TopicPartitionOffset(topic, 1, 0)]);
        var read = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && read.Count < expected)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r)
            {
                read.Add(r.Message.Value);
            }
        }

        // Anything more (a duplicate) would be there by now: the last stable offset is past every committed copy.
        while (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false } extra)
        {
            read.Add(extra.Message.Value);
        }

        return read;
    }

    /// <summary>
    /// The node FindCoordinator names for <paramref name="key"/>, once every running node names the same one (a node
    /// may hear of a new leader a moment after another).
    /// </summary>
    private static async Task<int> FindCoordinatorAsync(TestCluster cluster, string key, sbyte keyType)
    {
        var answers = new List<int>();
        await TestWait.UntilAsync(async () =>
        {
            answers.Clear();
            foreach (var node in cluster.Running)
            {
                using var connection = await RawConnection.OpenAsync(node.Port);
                var response = await IdempotenceTests.CallAsync<FindCoordinatorResponse>(connection, new FindCoordinatorRequest { KeyType = keyType, CoordinatorKeys = [key] }, 4);
                var found = response.Coordinators.Single();
                Assert.Equal(0, found.ErrorCode);
                Assert.Equal(node.Options.Listener.Address.ToString(), found.Host);
                answers.Add(found.NodeId);
            }

            return answers.Distinct().Count() == 1;
        });
        return answers[0];
    }

    private static async Task CreateTopicAsync(TestCluster cluster, string topic, int partitions)
    {
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == cluster.Running.Count()));
        var controller = await cluster.ActiveControllerAsync();
        using (var admin = await RawConnection.OpenAsync(controller.Port))
        {
            var created = await IdempotenceTests.CallAsync<CreateTopicsResponse>(admin, new CreateTopicsRequest
            {
                Topics = [new() { Name = topic, NumPartitions = partitions, ReplicationFactor = 3, Configs = [new() { Name = "min.insync.replicas", Value = "2" }] }],
                TimeoutMs = 30_000,
            }, 7);
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic(topic) is { } t
            && t.Partitions.Values.All(p => n.Services.GetRequiredService<ReplicaManager>().Get(topic, p.PartitionId) is { LeaderId: >= 0 } r
                && (r.LeaderId != n.Options.NodeId || r.IsLeader))));
    }
}
