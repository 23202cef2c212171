using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Osprey.Broker.Tests;

public class ProduceConsumeTests
{
    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public async Task WhatConfluentKafkaProducesItConsumesBack(CompressionType compression)
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "events", NumPartitions = 3 }]);
        }

        const int Count = 300;
        var sent = new List<DeliveryResult<string, string>>();
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap, Acks = Acks.All, CompressionType = compression, LingerMs = 5 }).Build())
        {
            var tasks = Enumerable.Range(0, Count).Select(i => producer.ProduceAsync("events", new Message<string, string>
            {
                Key = $"key-{i % 17}",
                Value = $"value-{i}",
                Headers = [new Header("n", Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)))],
            })).ToList();
            sent.AddRange(await Task.WhenAll(tasks));
        }

        // The same key always went to the same partition, and offsets within a partition are 0, 1, 2, …
        Assert.All(sent.GroupBy(d => d.Message.Key), g => Assert.Single(g.Select(d => d.Partition.Value).Distinct()));
        Assert.All(sent.GroupBy(d => d.Partition.Value), g => Assert.Equal(Enumerable.Range(0, g.Count()).Select(i => (long)i), g.Select(d => d.Offset.Value).Order()));

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "unused",
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("events", p, Offset.Beginning)));
        var received = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.Count < Count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } result)
            {
                received.Add(result);
            }
        }

        Assert.Equal(Count, received.Count);
        Assert.Equal(
            sent.Select(d => (d.Partition.Value, d.Offset.Value, d.Message.Key, d.Message.Value)).Order(),
            received.Select(r => (r.Partition.Value, r.Offset.Value, r.Message.Key, r.Message.Value)).Order());
        Assert.All(received, r => Assert.Equal(r.Message.Value["value-".Length..], Encoding.UTF8.GetString(r.Message.Headers.GetLastBytes("n"))));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ListOffsetsAndOffsetsForTimes()
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "timed", NumPartitions = 1 }]);
        }

        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                await producer.ProduceAsync("timed", new Message<Null, string> { Value = $"v{i}", Timestamp = new Timestamp(1_000_000 + (i * 1000), TimestampType.CreateTime) }, TestContext.Current.CancellationToken);
            }
        }

        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused" }).Build();
        var tp = new TopicPartition("timed", 0);
        var watermarks = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        Assert.Equal((0, 10), (watermarks.Low.Value, watermarks.High.Value));
        var byTime = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(1_004_500, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
        Assert.Equal(5, Assert.Single(byTime).Offset.Value);
        var afterAll = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(9_000_000, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
        Assert.Equal(Offset.End, Assert.Single(afterAll).Offset);
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData("nowhere", (short)-1, Osprey.Protocol.ErrorCode.UnknownTopicOrPartition)]
    [InlineData("known", (short)2, Osprey.Protocol.ErrorCode.InvalidRequiredAcks)]
    [InlineData("known", (short)1, Osprey.Protocol.ErrorCode.None)]
    public async Task ProducePartitionErrors(string topic, short acks, Osprey.Protocol.ErrorCode expected)
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "known", NumPartitions = 1 }]);
        }

        using var builder = new Osprey.Protocol.Records.RecordBatchBuilder();
        builder.Append(1, null, Encoding.UTF8.GetBytes("x"));
        var request = new Osprey.Protocol.Messages.ProduceRequest
        {
            Acks = acks,
            TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
        };
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(request, 9, 1);
        var (_, response) = await connection.ReceiveAsync<Osprey.Protocol.Messages.ProduceResponse>(9);
        var partition = Assert.Single(Assert.Single(response.Responses).PartitionResponses);
        Assert.Equal((short)expected, partition.ErrorCode);
        Assert.Equal(expected == Osprey.Protocol.ErrorCode.None ? 0 : -1, partition.BaseOffset);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task BothTimestampTypesReachConfluentConsumers()
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync(
            [
                new TopicSpecification { Name = "create-time", NumPartitions = 1 },
                new TopicSpecification { Name = "append-time", NumPartitions = 1, Configs = new() { ["message.timestamp.type"] = "LogAppendTime" } },
            ]);
        }

        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            foreach (var topic in new[] { "create-time", "append-time" })
            {
                var delivered = await producer.ProduceAsync(topic, new Message<Null, string> { Value = topic, Timestamp = new Timestamp(1_500_000_000_000, TimestampType.CreateTime) }, TestContext.Current.CancellationToken);
                if (topic == "create-time")
                {
                    Assert.Equal(1_500_000_000_000, delivered.Timestamp.UnixTimestampMs);
                }
                else
                {
                    Assert.Equal(TimestampType.LogAppendTime, delivered.Timestamp.Type);
                    Assert.True(delivered.Timestamp.UnixTimestampMs >= before);
                }
            }
        }

        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused" }).Build();
        consumer.Assign([new TopicPartitionOffset("create-time", 0, Offset.Beginning), new TopicPartitionOffset("append-time", 0, Offset.Beginning)]);
        var read = new Dictionary<string, Timestamp>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (read.Count < 2 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } result)
            {
                read[result.Topic] = result.Message.Timestamp;
            }
        }

        Assert.Equal(new Timestamp(1_500_000_000_000, TimestampType.CreateTime), read["create-time"]);
        Assert.Equal(TimestampType.LogAppendTime, read["append-time"].Type);
        Assert.InRange(read["append-time"].UnixTimestampMs, before, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }
}
