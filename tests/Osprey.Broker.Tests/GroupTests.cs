using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Broker.Config;

namespace Osprey.Broker.Tests;

public class GroupTests
{
    internal static Task<TestBroker> StartAsync() =>
        TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.num.partitions", "5")) });

    private static async Task CreateAndFillAsync(TestBroker broker, string topic, int partitions, int messages)
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
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 500,
        }).Build();

    [Fact]
    public async Task AGroupSharesThePartitionsAndResumesAfterItsCommit()
    {
        await using var broker = await StartAsync();
        await CreateAndFillAsync(broker, "shared", 4, 100);
        var received = new List<(int Partition, string Member, string Value)>();
        using (var first = Consumer(broker, "readers"))
        using (var second = Consumer(broker, "readers"))
        {
            first.Subscribe("shared");
            second.Subscribe("shared");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (received.Count < 100 && DateTime.UtcNow < deadline)
            {
                foreach (var (consumer, name) in new[] { (first, "first"), (second, "second") })
                {
                    if (consumer.Consume(TimeSpan.FromMilliseconds(50)) is { } r)
                    {
                        received.Add((r.Partition.Value, name, r.Message.Value));
                    }
                }
            }

            Assert.Equal(100, received.Select(r => r.Value).Distinct().Count());
            first.Commit();
            second.Commit();
            Assert.Equal(4, first.Assignment.Count + second.Assignment.Count);
            Assert.Empty(first.Assignment.Intersect(second.Assignment));
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
}
