using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

public class IdempotenceTests
{
    internal static async Task<TResponse> CallAsync<TResponse>(RawConnection connection, Osprey.Protocol.IApiMessage request, short version)
        where TResponse : Osprey.Protocol.IApiMessage, new()
    {
        await connection.SendAsync(request, version, 77);
        return (await connection.ReceiveAsync<TResponse>(version)).Body;
    }

    internal static byte[] Batch(long producerId, short epoch, int sequence, int count, long? timestamp = null)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence };
        for (var i = 0; i < count; i++)
        {
            builder.Append(timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, Encoding.UTF8.GetBytes($"seq-{sequence + i}"));
        }

        return builder.ToArray();
    }

    internal static async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(RawConnection connection, string topic, byte[] records, short acks = -1)
    {
        var response = await CallAsync<ProduceResponse>(connection, new ProduceRequest
        {
            Acks = acks,
            TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = records }] }],
        }, 9);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ConfluentIdempotentProducerWritesEachMessageOnceInOrder()
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "exactly", NumPartitions = 2 }]);
        }

        const int Count = 2000;
        var sent = new List<DeliveryResult<int, string>>();
        using (var producer = new ProducerBuilder<int, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap, EnableIdempotence = true, LingerMs = 2, BatchNumMessages = 50 }).Build())
        {
            var tasks = Enumerable.Range(0, Count).Select(i => producer.ProduceAsync(new TopicPartition("exactly", i % 2), new Message<int, string> { Key = i, Value = $"v{i}" })).ToList();
            sent.AddRange(await Task.WhenAll(tasks));
        }

        // Per partition, the messages took offsets 0, 1, 2, … in the order they were sent.
        Assert.All(sent.GroupBy(d => d.Partition.Value), g =>
            Assert.Equal(Enumerable.Range(0, g.Count()).Select(i => (long)i), g.OrderBy(d => d.Message.Key).Select(d => d.Offset.Value)));
        Assert.Equal(Count / 2, broker.Server.Logs.Get("exactly", 0)!.LogEndOffset);

        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var described = await CallAsync<DescribeProducersResponse>(connection, new DescribeProducersRequest { Topics = [new() { Name = "exactly", PartitionIndexes = [0, 1, 5] }] }, 0);
        var partitions = Assert.Single(described.Topics).Partitions;
        Assert.All(partitions.Take(2), p => Assert.Equal((Count / 2) - 1, Assert.Single(p.ActiveProducers).LastSequence));
        Assert.Equal(partitions[0].ActiveProducers[0].ProducerId, partitions[1].ActiveProducers[0].ProducerId);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, partitions[2].ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task RetriesGapsAndOldEpochsOnTheWireAndStateSurvivesARestart()
    {
        var broker = await TestBroker.StartAsync();
        long producerId;
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "retries", NumPartitions = 1 }]);
        }

        using (var connection = await RawConnection.OpenAsync(broker.Server.Port))
        {
            var init = await CallAsync<InitProducerIdResponse>(connection, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000 }, 4);
            Assert.Equal((0, 0), (init.ErrorCode, (int)init.ProducerEpoch));
            producerId = init.ProducerId;
            var other = await CallAsync<InitProducerIdResponse>(connection, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000 }, 4);
            Assert.NotEqual(producerId, other.ProducerId);

            Assert.Equal((0, 0L), ((int)(await ProduceAsync(connection, "retries", Batch(producerId, 0, 0, 3))).ErrorCode, (await ProduceAsync(connection, "retries", Batch(producerId, 0, 3, 2))).BaseOffset - 3));
            var retry = await ProduceAsync(connection, "retries", Batch(producerId, 0, 3, 2));
            Assert.Equal((0, 3L), ((int)retry.ErrorCode, retry.BaseOffset));
            Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await ProduceAsync(connection, "retries", Batch(producerId, 0, 9, 1))).ErrorCode);
            Assert.Equal(5, broker.Server.Logs.Get("retries", 0)!.LogEndOffset);
        }

        await broker.Server.DisposeAsync();
        await using var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = broker.Server.Options.DataDirectory });
        using (var connection = await RawConnection.OpenAsync(restarted.Server.Port))
        {
            var retry = await ProduceAsync(connection, "retries", Batch(producerId, 0, 3, 2));
            Assert.Equal((0, 3L), ((int)retry.ErrorCode, retry.BaseOffset));
            Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await ProduceAsync(connection, "retries", Batch(producerId, 0, 6, 1))).ErrorCode);
            Assert.Equal(5L, (await ProduceAsync(connection, "retries", Batch(producerId, 0, 5, 1))).BaseOffset);
            Assert.Equal(6L, (await ProduceAsync(connection, "retries", Batch(producerId, 1, 0, 1))).BaseOffset);
            Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await ProduceAsync(connection, "retries", Batch(producerId, 0, 6, 1))).ErrorCode);

            // Producer ids are never handed out twice, restarts included.
            var init = await CallAsync<InitProducerIdResponse>(connection, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000 }, 4);
            Assert.True(init.ProducerId > producerId + 1);
        }
    }
}

public class ProduceRuleTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TopicSettingsDecideWhatAProduceMayWrite()
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync(
            [
                new TopicSpecification { Name = "near-now", NumPartitions = 1, Configs = new() { ["message.timestamp.after.max.ms"] = "60000", ["message.timestamp.before.max.ms"] = "60000" } },
                new TopicSpecification { Name = "two-isr", NumPartitions = 1, Configs = new() { ["min.insync.replicas"] = "2" } },
                new TopicSpecification { Name = "small", NumPartitions = 1, Configs = new() { ["max.message.bytes"] = "1000" } },
            ]);
        }

        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.Equal((short)ErrorCode.InvalidTimestamp, (await IdempotenceTests.ProduceAsync(connection, "near-now", Batches(1, now + 3_600_000))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTimestamp, (await IdempotenceTests.ProduceAsync(connection, "near-now", Batches(1, now - 3_600_000))).ErrorCode);
        Assert.Equal((short)ErrorCode.None, (await IdempotenceTests.ProduceAsync(connection, "near-now", Batches(1, now))).ErrorCode);

        Assert.Equal((short)ErrorCode.NotEnoughReplicas, (await IdempotenceTests.ProduceAsync(connection, "two-isr", Batches(1, now))).ErrorCode);
        Assert.Equal((short)ErrorCode.None, (await IdempotenceTests.ProduceAsync(connection, "two-isr", Batches(1, now), acks: 1)).ErrorCode);

        Assert.Equal((short)ErrorCode.MessageTooLarge, (await IdempotenceTests.ProduceAsync(connection, "small", Batches(1, now, valueSize: 2000))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRecord, (await IdempotenceTests.ProduceAsync(connection, "small", [.. Batches(1, now), .. Batches(1, now)])).ErrorCode);
        Assert.Equal(0, broker.Server.Logs.Get("small", 0)!.LogEndOffset);
    }

    private static byte[] Batches(int count, long timestamp, int valueSize = 10)
    {
        using var builder = new RecordBatchBuilder();
        for (var i = 0; i < count; i++)
        {
            builder.Append(timestamp, null, new byte[valueSize]);
        }

        return builder.ToArray();
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData("zstd", Confluent.Kafka.CompressionType.None, Osprey.Protocol.Records.CompressionType.Zstd)]
    [InlineData("uncompressed", Confluent.Kafka.CompressionType.Lz4, Osprey.Protocol.Records.CompressionType.None)]
    [InlineData("gzip", Confluent.Kafka.CompressionType.Snappy, Osprey.Protocol.Records.CompressionType.Gzip)]
    public async Task ATopicsCompressionTypeIsHowItsBatchesAreStored(string topicCodec, Confluent.Kafka.CompressionType producerCodec, Osprey.Protocol.Records.CompressionType stored)
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "squeezed", NumPartitions = 1, Configs = new() { ["compression.type"] = topicCodec } }]);
        }

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap, CompressionType = producerCodec, LingerMs = 5, EnableIdempotence = true }).Build())
        {
            await Task.WhenAll(Enumerable.Range(0, 100).Select(i => producer.ProduceAsync("squeezed", new Message<string, string> { Key = $"k{i}", Value = new string('v', 100) + i, Headers = [new Confluent.Kafka.Header("h", [(byte)i])] })));
        }

        var log = broker.Server.Logs.Get("squeezed", 0)!;
        var region = log.Read(0, int.MaxValue).Region!.Value.ToArray();
        foreach (var batch in RecordBatch.Enumerate(region))
        {
            Assert.Equal(stored, batch.Header.Compression);
            Assert.True(batch.Header.ProducerId >= 0);
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused" }).Build();
        consumer.Assign(new TopicPartitionOffset("squeezed", 0, Offset.Beginning));
        var received = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.Count < 100 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } result)
            {
                received.Add(result);
            }
        }

        Assert.Equal(Enumerable.Range(0, 100).Select(i => ($"k{i}", new string('v', 100) + i, (byte)i)), received.Select(r => (r.Message.Key, r.Message.Value, r.Message.Headers.GetLastBytes("h")[0])).OrderBy(r => int.Parse(r.Item1[1..], System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task OneMegabyteMessagesGoThroughAndLargerOnesAreMessageTooLarge()
    {
        await using var broker = await TestBroker.StartAsync();
        var big = new byte[1_000_000];
        Random.Shared.NextBytes(big);
        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = broker.Bootstrap, MessageMaxBytes = 3_000_000, Acks = Acks.All }).Build())
        {
            await producer.ProduceAsync("large", new Message<Null, byte[]> { Value = big }, TestContext.Current.CancellationToken);
            var e = await Assert.ThrowsAsync<ProduceException<Null, byte[]>>(() => producer.ProduceAsync("large", new Message<Null, byte[]> { Value = new byte[2_000_000] }, TestContext.Current.CancellationToken));
            Assert.Equal(Confluent.Kafka.ErrorCode.MsgSizeTooLarge, e.Error.Code);
        }

        using var consumer = new ConsumerBuilder<Null, byte[]>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused", FetchMaxBytes = 2_000_000 }).Build();
        consumer.Assign(new TopicPartitionOffset("large", 0, Offset.Beginning));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        ConsumeResult<Null, byte[]>? received = null;
        while (received is null && DateTime.UtcNow < deadline)
        {
            received = consumer.Consume(TimeSpan.FromMilliseconds(200));
        }

        Assert.NotNull(received);
        Assert.Equal(big, received.Message.Value);
        Assert.Equal(1, broker.Server.Logs.Get("large", 0)!.LogEndOffset);
    }
}
