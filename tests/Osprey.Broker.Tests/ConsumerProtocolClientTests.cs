using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Broker.Config;

namespace Osprey.Broker.Tests;

/// <summary>Confluent.Kafka (librdkafka) consumers with group.protocol=consumer (KIP-848) against the broker.</summary>
public class ConsumerProtocolClientTests
{
    private static Task<TestBroker> StartAsync() =>
        TestBroker.StartAsync(o => o with
        {
            Config = BrokerConfig.From(
                ("offsets.topic.num.partitions", "5"),
                ("group.consumer.heartbeat.interval.ms", "300"),
                ("group.consumer.session.timeout.ms", "6000")),
        });

    private static IConsumer<string, string> Consumer(TestBroker broker, string group, string? assignor = null) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = group,
            GroupProtocol = GroupProtocol.Consumer,
            GroupRemoteAssignor = assignor,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task FiveConsumersOnFourPartitionsLeaveOneIdleAndALeaverHandsItsPartitionsOn()
    {
        await using var broker = await StartAsync();
        await GroupTests.CreateAndFillAsync(broker, "kip848", 4, 8);
        var consumers = Enumerable.Range(0, 5).Select(i => ($"c{i}", Consumer(broker, "next-gen"))).ToArray();
        var closed = new HashSet<IConsumer<string, string>>();
        try
        {
            foreach (var (_, consumer) in consumers)
            {
                consumer.Subscribe("kip848");
            }

            var settled = await GroupTests.SettleAsync(broker, "next-gen", 4, consumers);
            Assert.Equal([0, 1, 2, 3], settled.Select(s => s.Partition).Order());
            Assert.Equal(4, settled.Select(s => s.Member).Distinct().Count());

            // The member holding partition 0 leaves: its partition moves to the idle one.
            var leaver = settled.First(s => s.Partition == 0).Member;
            var idle = consumers.Select(c => c.Item1).Except(settled.Select(s => s.Member)).Single();
            var (_, leaving) = consumers.Single(c => c.Item1 == leaver);
            leaving.Close();
            closed.Add(leaving);
            var rest = consumers.Where(c => c.Item1 != leaver).ToArray();
            var after = await GroupTests.SettleAsync(broker, "next-gen", 4, rest);
            Assert.Equal([0, 1, 2, 3], after.Select(s => s.Partition).Order());
            Assert.Equal(idle, after.Single(s => s.Partition == 0).Member);
        }
        finally
        {
            GroupTests.CloseAll(consumers.Select(c => c.Item2), closed);
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CommittedOffsetsSurviveCloseAndTheNextMemberResumesThere()
    {
        await using var broker = await StartAsync();
        await GroupTests.CreateAndFillAsync(broker, "resume", 2, 20);
        var seen = new List<string>();
        using (var first = Consumer(broker, "resumers", "range"))
        {
            first.Subscribe("resume");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (seen.Count < 20 && DateTime.UtcNow < deadline)
            {
                if (first.Consume(TimeSpan.FromMilliseconds(100)) is { } r)
                {
                    seen.Add(r.Message.Value);
                }
            }

            Assert.Equal(20, seen.Count);
            first.Commit();
            first.Close();
        }

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await Task.WhenAll(Enumerable.Range(20, 6).Select(i => producer.ProduceAsync(new TopicPartition("resume", i % 2), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" })));
        }

        using var second = Consumer(broker, "resumers", "range");
        second.Subscribe("resume");
        var resumed = new List<string>();
        var until = DateTime.UtcNow.AddSeconds(60);
        while (resumed.Count < 6 && DateTime.UtcNow < until)
        {
            if (second.Consume(TimeSpan.FromMilliseconds(100)) is { } r)
            {
                resumed.Add(r.Message.Value);
            }
        }

        Assert.Equal(Enumerable.Range(20, 6).Select(i => $"v{i}").Order(), resumed.Order());

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        var described = Assert.Single((await admin.DescribeConsumerGroupsAsync(["resumers"])).ConsumerGroupDescriptions);
        Assert.Equal((ConsumerGroupState.Stable, ConsumerGroupType.Consumer, "range"), (described.State, described.GroupType, described.PartitionAssignor));
        Assert.Equal([0, 1], Assert.Single(described.Members).Assignment.TopicPartitions.Select(tp => tp.Partition.Value).Order());
        var listed = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Consumer] });
        Assert.Equal(("resumers", ConsumerGroupType.Consumer), (Assert.Single(listed.Valid).GroupId, listed.Valid[0].Type));
        second.Close();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ARegexSubscriptionPicksUpMatchingTopics()
    {
        await using var broker = await StartAsync();
        await GroupTests.CreateAndFillAsync(broker, "metrics-cpu", 1, 3);
        await GroupTests.CreateAndFillAsync(broker, "metrics-disk", 1, 3);
        await GroupTests.CreateAndFillAsync(broker, "logs", 1, 3);
        using var consumer = Consumer(broker, "patterns");
        consumer.Subscribe("^metrics-.*");
        var topics = new HashSet<string>();
        var count = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (count < 6 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } r)
            {
                topics.Add(r.Topic);
                count++;
            }
        }

        Assert.Equal(["metrics-cpu", "metrics-disk"], topics.Order());
        Assert.Equal(6, count);
        consumer.Close();
    }
}
