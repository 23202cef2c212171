using Microsoft.Extensions.DependencyInjection;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Broker.Config;

namespace Osprey.Broker.Tests;

public class GroupTests
{
    internal static Task<TestBroker> StartAsync() =>
        TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.num.partitions", "5")) });

    internal static async Task CreateAndFillAsync(TestBroker broker, string topic, int partitions, int messages)
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions }]);
        }

        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build();
        await Task.WhenAll(Enumerable.Range(0, messages).Select(i => producer.ProduceAsync(new TopicPartition(topic, i % partitions), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" })));
    }

    private static IConsumer<string, string> Consumer(TestBroker broker, string group, string? instance = null) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = group,
            GroupInstanceId = instance,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            SessionTimeoutMs = LongSessionMs,
            HeartbeatIntervalMs = 500,
        }).Build();

    // None of these tests waits for a session to expire (members leave with Close), so a long session costs nothing and
    // keeps a starved machine's late heartbeats from evicting a member mid-test.
    private const int LongSessionMs = 30_000;

    /// <summary>
    /// Closes each consumer not yet closed, then disposes it. Dispose alone destroys the handle without a consumer
    /// close, and librdkafka's destroy then waits for any rebalance step that only the application can finish: after
    /// a cooperative rebalance a member is often left with an incremental assign handed to the application that no
    /// poll has served yet, and its destroy blocked for good (about once in ten suite runs beside a CPU hog; a stack
    /// dump showed rd_kafka_destroy joining a main thread that waited in the group state machine). Close serves
    /// those steps and leaves the group, as an application should.
    /// </summary>
    internal static void CloseAll(IEnumerable<IConsumer<string, string>> consumers, IReadOnlySet<IConsumer<string, string>> closed)
    {
        foreach (var consumer in consumers)
        {
            if (!closed.Contains(consumer))
            {
                consumer.Close();
            }

            consumer.Dispose();
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AGroupSharesThePartitionsAndResumesAfterItsCommit()
    {
        await using var broker = await StartAsync();
        await CreateAndFillAsync(broker, "shared", 4, 0);
        var received = new List<(int Partition, string Member, string Value)>();
        using (var first = Consumer(broker, "readers"))
        using (var second = Consumer(broker, "readers"))
        {
            first.Subscribe("shared");
            second.Subscribe("shared");
            var settled = await SettleAsync(broker, "readers", 4, ("first", first), ("second", second));
            Assert.Equal([0, 1, 2, 3], settled.Select(s => s.Partition).Order());
            Assert.Equal(2, settled.Select(s => s.Member).Distinct().Count());
            using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
            {
                await Task.WhenAll(Enumerable.Range(0, 100).Select(i => producer.ProduceAsync(new TopicPartition("shared", i % 4), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" })));
            }

            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (received.Select(r => r.Value).Distinct().Count() < 100 && DateTime.UtcNow < deadline)
            {
                foreach (var (consumer, name) in new[] { (first, "first"), (second, "second") })
                {
                    if (consumer.Consume(TimeSpan.FromMilliseconds(50)) is { } r)
                    {
                        received.Add((r.Partition.Value, name, r.Message.Value));
                    }
                }
            }

            Assert.Equal(100, received.Count);
            first.Commit();
            second.Commit();
            first.Close();
            second.Close();
        }

        // Each partition was read by one member only.
        Assert.All(received.GroupBy(r => r.Partition), g => Assert.Single(g.Select(r => r.Member).Distinct()));

        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await Task.WhenAll(Enumerable.Range(100, 10).Select(i => producer.ProduceAsync(new TopicPartition("shared", i % 4), new Message<Null, string> { Value = $"v{i}" })));
        }

        using var resumed = Consumer(broker, "readers");
        resumed.Subscribe("shared");
        var after = new List<string>();
        var until = DateTime.UtcNow.AddSeconds(60);
        while (after.Count < 10 && DateTime.UtcNow < until)
        {
            if (resumed.Consume(TimeSpan.FromMilliseconds(100)) is { } r)
            {
                after.Add(r.Message.Value);
            }
        }

        Assert.Equal(Enumerable.Range(100, 10).Select(i => $"v{i}").Order(), after.Order());
        resumed.Close();
    }

    /// <summary>
    /// Polls every member until the group has settled: each of the topic's partitions is assigned to exactly one
    /// member, and the broker describes the group as Stable with exactly these members holding exactly what each
    /// consumer says it holds. Deterministic (no "unchanged for a while" window, which a loaded machine broke); the
    /// limit only keeps a broken group from hanging the test.
    /// </summary>
    internal static async Task<List<(string Member, int Partition)>> SettleAsync(TestBroker broker, string groupId, int partitions, params (string Name, IConsumer<string, string> Consumer)[] members)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            foreach (var (_, consumer) in members)
            {
                consumer.Consume(TimeSpan.FromMilliseconds(20));
            }

            var held = members.SelectMany(m => m.Consumer.Assignment.Select(tp => (m.Name, tp.Partition.Value))).Order().ToList();
            if (held.Select(h => h.Value).Order().SequenceEqual(Enumerable.Range(0, partitions)))
            {
                var described = Assert.Single((await admin.DescribeConsumerGroupsAsync([groupId])).ConsumerGroupDescriptions);

                // The await resumed on the admin client's own poll thread: leave it, or disposing that client (or a
                // consumer) from its own callback thread blocks in librdkafka for good (seen: a 20-minute hang).
                await Task.Yield();
                var agrees = described.State == ConsumerGroupState.Stable
                    && described.Members.Count == members.Length
                    && members.All(m => described.Members.SingleOrDefault(d => d.ConsumerId == m.Consumer.MemberId) is { } d
                        && d.Assignment.TopicPartitions.Select(tp => tp.Partition.Value).Order().SequenceEqual(m.Consumer.Assignment.Select(tp => tp.Partition.Value).Order()));
                if (agrees)
                {
                    return held;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"group {groupId} did not settle; members hold {string.Join(", ", held)}");
        }
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(PartitionAssignmentStrategy.Range)]
    [InlineData(PartitionAssignmentStrategy.RoundRobin)]
    [InlineData(PartitionAssignmentStrategy.CooperativeSticky)]
    public async Task FiveConsumersOnFourPartitionsLeaveOneIdleAndALeaverHandsItsPartitionsOn(PartitionAssignmentStrategy strategy)
    {
        await using var broker = await StartAsync();
        await CreateAndFillAsync(broker, "four", 4, 8);
        var consumers = Enumerable.Range(0, 5).Select(i => ($"c{i}", new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = $"five-{strategy}",
            PartitionAssignmentStrategy = strategy,
            SessionTimeoutMs = LongSessionMs,
            HeartbeatIntervalMs = 300,
            EnableAutoCommit = false,
        }).Build())).ToArray();
        var closed = new HashSet<IConsumer<string, string>>();
        try
        {
            foreach (var (_, consumer) in consumers)
            {
                consumer.Subscribe("four");
            }

            var settled = await SettleAsync(broker, $"five-{strategy}", 4, consumers);
            Assert.Equal([0, 1, 2, 3], settled.Select(s => s.Partition).Order());
            Assert.Equal(4, settled.Select(s => s.Member).Distinct().Count()); // one partition each, one member idle

            // A member with a partition leaves: its partition moves to the one that was idle.
            var leaver = consumers.First(c => c.Item2.Assignment.Count > 0);
            leaver.Item2.Close();
            closed.Add(leaver.Item2);
            var rest = consumers.Where(c => c != leaver).ToArray();
            var moved = await SettleAsync(broker, $"five-{strategy}", 4, rest);
            Assert.Equal([0, 1, 2, 3], moved.Select(s => s.Partition).Order());
            Assert.Equal(4, moved.Select(s => s.Member).Distinct().Count());
        }
        finally
        {
            CloseAll(consumers.Select(c => c.Item2), closed);
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TwoGroupsOnOneTopicEachReceiveEveryMessage()
    {
        await using var broker = await StartAsync();
        await CreateAndFillAsync(broker, "both", 2, 40);
        foreach (var group in new[] { "audit", "billing" })
        {
            using var consumer = Consumer(broker, group);
            consumer.Subscribe("both");
            var values = new HashSet<string>();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (values.Count < 40 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } r)
                {
                    values.Add(r.Message.Value);
                }
            }

            Assert.Equal(40, values.Count);
            consumer.Close();
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStaticMemberRestartingWithinItsSessionCausesNoRebalance()
    {
        await using var broker = await StartAsync();
        await CreateAndFillAsync(broker, "static-topic", 4, 0);
        var revocations = 0;
        using var steady = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "statics",
            GroupInstanceId = "steady",
            SessionTimeoutMs = LongSessionMs,
            HeartbeatIntervalMs = 500,
            EnableAutoCommit = false,
        }).SetPartitionsRevokedHandler((_, _) => Interlocked.Increment(ref revocations)).Build();
        var restarting = Consumer(broker, "statics", "restarting");
        steady.Subscribe("static-topic");
        restarting.Subscribe("static-topic");
        var settled = await SettleAsync(broker, "statics", 4, ("steady", steady), ("restarting", restarting));
        var held = settled.Where(s => s.Member == "restarting").Select(s => s.Partition).ToList();
        Assert.Equal(2, held.Count);
        var before = Volatile.Read(ref revocations);

        // The process stops without leaving (static members do not), and a new one with the same instance id
        // comes back well within the 30 s session: it gets the same partitions, and the other member keeps its own.
        restarting.Dispose();
        using var back = Consumer(broker, "statics", "restarting");
        back.Subscribe("static-topic");
        var after = await SettleAsync(broker, "statics", 4, ("steady", steady), ("restarting", back));
        Assert.Equal(held, after.Where(s => s.Member == "restarting").Select(s => s.Partition).ToList());
        Assert.Equal(before, Volatile.Read(ref revocations));
        back.Close();
        steady.Close();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ConfluentAdminListsDescribesAltersAndDeletesGroups()
    {
        await using var broker = await StartAsync();
        await CreateAndFillAsync(broker, "admin-groups", 2, 10);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        using (var member = Consumer(broker, "inspected"))
        {
            member.Subscribe("admin-groups");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (member.Assignment.Count < 2 && DateTime.UtcNow < deadline)
            {
                member.Consume(TimeSpan.FromMilliseconds(100));
            }

            member.Commit([new TopicPartitionOffset("admin-groups", 0, 3), new TopicPartitionOffset("admin-groups", 1, 4)]);
            var described = Assert.Single((await admin.DescribeConsumerGroupsAsync(["inspected"])).ConsumerGroupDescriptions);
            Assert.Equal((ConsumerGroupState.Stable, "range"), (described.State, described.PartitionAssignor));
            Assert.Equal([0, 1], Assert.Single(described.Members).Assignment.TopicPartitions.Select(tp => tp.Partition.Value).Order());
            var listed = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchStates = [ConsumerGroupState.Stable] });
            Assert.Contains(listed.Valid, g => g.GroupId == "inspected" && g.State == ConsumerGroupState.Stable);
            var e = await Assert.ThrowsAsync<DeleteGroupsException>(() => admin.DeleteGroupsAsync(["inspected"]));
            Assert.Equal(ErrorCode.NonEmptyGroup, Assert.Single(e.Results).Error.Code);
            member.Close();
        }

        var offsets = Assert.Single(await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("inspected", null)]));
        Assert.Equal([(0, 3L), (1, 4L)], offsets.Partitions.Select(p => (p.Partition.Value, p.Offset.Value)).Order());
        await admin.AlterConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitionOffsets("inspected", [new TopicPartitionOffset("admin-groups", 0, 1)])]);
        offsets = Assert.Single(await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("inspected", [new TopicPartition("admin-groups", 0)])]));
        Assert.Equal(1, Assert.Single(offsets.Partitions).Offset.Value);
        await admin.DeleteConsumerGroupOffsetsAsync("inspected", [new TopicPartition("admin-groups", 1)]);
        offsets = Assert.Single(await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("inspected", null)]));
        Assert.Equal([0], offsets.Partitions.Select(p => p.Partition.Value));
        await admin.DeleteGroupsAsync(["inspected"]);
        var gone = await admin.ListConsumerGroupsAsync();
        Assert.DoesNotContain(gone.Valid, g => g.GroupId == "inspected");
    }

    /// <summary>
    /// Deleting a topic deletes every group's committed offsets for it, as Kafka does: the topic created again under
    /// the same name has no committed offset (lag counts every record, a consumer starts by auto.offset.reset), also
    /// for a deletion the group coordinator did not see (it finds offsets of topics that no longer exist when it loads).
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CommittedOffsetsAreDeletedWithTheirTopic()
    {
        var broker = await StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        await using var stopped = broker;
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await CreateAndFillAsync(broker, "recreated", 1, 10);
        await CreateAndFillAsync(broker, "removed-offline", 1, 10);
        await admin.AlterConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitionOffsets("keeper", [new TopicPartitionOffset("recreated", 0, 8), new TopicPartitionOffset("removed-offline", 0, 6)])]);

        await admin.DeleteTopicsAsync(["recreated"]);
        await CreateAndFillAsync(broker, "recreated", 1, 5);
        var offsets = Assert.Single(await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("keeper", [new TopicPartition("recreated", 0)])]));
        Assert.Equal(Offset.Unset, Assert.Single(offsets.Partitions).Offset);
        using (var consumer = Consumer(broker, "keeper"))
        {
            consumer.Subscribe("recreated");
            var read = new List<string>();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (read.Count < 5 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } result)
                {
                    read.Add(result.Message.Value);
                }
            }

            Assert.Equal(["v0", "v1", "v2", "v3", "v4"], read);
            consumer.Close();
        }

        // A deletion written to the metadata while the group coordinator is not running (as after a crash between
        // the two): the offsets go when the coordinator loads.
        await broker.Server.DisposeAsync();
        await using (var offline = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir, Config = BrokerConfig.From(("offsets.topic.num.partitions", "5")) }))
        {
            var metadata = offline.Server.Services.GetRequiredService<Osprey.Metadata.MetadataLog>();
            await metadata.AppendAsync([new Osprey.Protocol.Messages.RemoveTopicRecord { TopicId = metadata.Image.Topic("removed-offline")!.TopicId }], TestContext.Current.CancellationToken);
            await offline.Server.DisposeAsync();
        }

        await using var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir, Config = BrokerConfig.From(("offsets.topic.num.partitions", "5")) });
        using var again = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = restarted.Bootstrap }).Build();
        var left = Assert.Single(await again.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("keeper", null)]));
        Assert.DoesNotContain(left.Partitions, p => p.Topic == "removed-offline");
    }
}


public class OffsetsByTopicIdTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task Version10CommitsAndFetchesOffsetsByTopicId()
    {
        await using var broker = await GroupTests.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var metadata = await IdempotenceTests.CallAsync<Osprey.Protocol.Messages.MetadataResponse>(
            connection, new Osprey.Protocol.Messages.MetadataRequest { Topics = [new() { Name = "by-id" }], AllowAutoTopicCreation = true }, 12);
        var topicId = Assert.Single(metadata.Topics).TopicId;
        var unknownId = Guid.NewGuid();
        var commit = new Osprey.Protocol.Messages.OffsetCommitRequest
        {
            GroupId = "ids",
            GenerationIdOrMemberEpoch = -1,
            MemberId = "",
            Topics =
            [
                new() { TopicId = topicId, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 17, CommittedMetadata = "m" }] },
                new() { TopicId = unknownId, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }] },
            ],
        };
        Osprey.Protocol.Messages.OffsetCommitResponse committed;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((committed = await IdempotenceTests.CallAsync<Osprey.Protocol.Messages.OffsetCommitResponse>(connection, commit, 10)).Topics[0].Partitions[0].ErrorCode
            == (short)Osprey.Protocol.ErrorCode.CoordinatorLoadInProgress && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken); // as a client backs off while __consumer_offsets loads
        }

        Assert.Equal([(topicId, (short)0), (unknownId, (short)Osprey.Protocol.ErrorCode.UnknownTopicId)], committed.Topics.Select(t => (t.TopicId, t.Partitions[0].ErrorCode)));

        var fetched = await IdempotenceTests.CallAsync<Osprey.Protocol.Messages.OffsetFetchResponse>(connection, new Osprey.Protocol.Messages.OffsetFetchRequest
        {
            Groups = [new() { GroupId = "ids", Topics = [new() { TopicId = topicId, PartitionIndexes = [0] }, new() { TopicId = unknownId, PartitionIndexes = [0] }] }],
        }, 10);
        var group = Assert.Single(fetched.Groups);
        Assert.Equal(
            [(topicId, 17L, (short)0), (unknownId, -1L, (short)Osprey.Protocol.ErrorCode.UnknownTopicId)],
            group.Topics.Select(t => (t.TopicId, t.Partitions[0].CommittedOffset, t.Partitions[0].ErrorCode)));

        // All of the group's offsets, by id too.
        var all = await IdempotenceTests.CallAsync<Osprey.Protocol.Messages.OffsetFetchResponse>(connection, new Osprey.Protocol.Messages.OffsetFetchRequest { Groups = [new() { GroupId = "ids", Topics = null }] }, 10);
        Assert.Equal(topicId, Assert.Single(Assert.Single(all.Groups).Topics).TopicId);
    }
}
