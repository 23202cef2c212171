using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;
using Osprey.Protocol.Records;

namespace Osprey.Compatibility.Tests;

/// <summary>
/// Requests captured from librdkafka (through Confluent.Kafka) decode field by field to what the client was told
/// to send, and encode back to exactly the captured bytes. The client accepting Osprey-encoded answers and
/// reporting the offset Osprey chose shows the response side.
/// </summary>
public class GoldenCaptureTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ProducerRequestsDecodeAndReencodeExactly()
    {
        await using var broker = new CaptureBroker();
        var config = new ProducerConfig
        {
            BootstrapServers = $"127.0.0.1:{broker.Port}",
            ClientId = "golden-client",
            Acks = Acks.All,
            RequestTimeoutMs = 7000,
            MessageTimeoutMs = 20000,
            LingerMs = 0,
            CompressionType = Confluent.Kafka.CompressionType.None,
            EnableIdempotence = false,
        };
        using (var producer = new ProducerBuilder<string, string>(config).Build())
        {
            var result = await producer.ProduceAsync(
                CaptureBroker.TopicName,
                new Message<string, string> { Key = "k1", Value = "hello golden" },
                TestContext.Current.CancellationToken);
            Assert.Equal(CaptureBroker.ProduceBaseOffset, result.Offset.Value);
            Assert.Equal(0, result.Partition.Value);
        }

        // ApiVersions: the client introduces itself.
        var (apiVersionsHeader, apiVersions, apiVersionsVersion) = Decode<ApiVersionsRequest>(broker.Captured[ApiKey.ApiVersions]);
        Assert.Equal("golden-client", apiVersionsHeader.ClientId);
        Assert.Equal((short)ApiKey.ApiVersions, apiVersionsHeader.RequestApiKey);
        Assert.True(apiVersionsVersion >= 3, $"librdkafka 2.16 asks ApiVersions v3+, got v{apiVersionsVersion}");
        Assert.Matches("^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$", apiVersions.ClientSoftwareName);
        Assert.Contains("2.16", apiVersions.ClientSoftwareVersion, StringComparison.Ordinal);

        // Metadata: one of the requests asks about the topic it is producing to.
        var metadataRequests = broker.All[ApiKey.Metadata].Select(Decode<MetadataRequest>).ToList();
        Assert.All(metadataRequests, m => Assert.Equal("golden-client", m.Header.ClientId));
        Assert.True(metadataRequests.Any(m => m.Body.Topics?.Any(t => t.Name == CaptureBroker.TopicName) == true), string.Join(" ", broker.All[ApiKey.Metadata].Select(Convert.ToHexString)));

        // Produce: acks=all, the configured timeout, one batch for partition 0 of the topic.
        var (produceHeader, produce, produceVersion) = Decode<ProduceRequest>(broker.Captured[ApiKey.Produce]);
        Assert.Equal("golden-client", produceHeader.ClientId);
        Assert.True(produceVersion >= 3);
        Assert.Equal((short)-1, produce.Acks);
        Assert.Equal(7000, produce.TimeoutMs);
        Assert.Null(produce.TransactionalId);
        var topic = Assert.Single(produce.TopicData);
        Assert.Equal(CaptureBroker.TopicName, topic.Name);
        var partition = Assert.Single(topic.PartitionData);
        Assert.Equal(0, partition.Index);
        Assert.NotNull(partition.Records);
        Assert.Equal(2, partition.Records!.Value.Span[16]); // magic byte of record batch v2

        GoldenFiles.SaveIfAsked(broker.All.ToDictionary(p => p.Key, p => p.Value.Last()));
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(Confluent.Kafka.CompressionType.None)]
    [InlineData(Confluent.Kafka.CompressionType.Gzip)]
    [InlineData(Confluent.Kafka.CompressionType.Snappy)]
    [InlineData(Confluent.Kafka.CompressionType.Lz4)]
    [InlineData(Confluent.Kafka.CompressionType.Zstd)]
    public async Task LibrdkafkaBatchesDecodeWithEachCodec(Confluent.Kafka.CompressionType compression)
    {
        await using var broker = new CaptureBroker();
        const int Count = 200;
        using (var producer = new ProducerBuilder<string?, string>(new ProducerConfig
        {
            BootstrapServers = $"127.0.0.1:{broker.Port}",
            CompressionType = compression,
            LingerMs = 50,
            EnableIdempotence = true,
        }).Build())
        {
            for (var i = 0; i < Count; i++)
            {
                var message = new Message<string?, string>
                {
                    Key = i % 10 == 0 ? null : $"key-{i}",
                    Value = $"value-{i}-" + new string((char)('a' + (i % 26)), i % 97),
                    Headers = i % 3 == 0 ? new Headers { { "h", [(byte)i] } } : null,
                };
                producer.Produce(CaptureBroker.TopicName, message);
            }

            producer.Flush(TestContext.Current.CancellationToken);
        }

        var seen = new List<(string? Key, string Value, int Headers)>();
        var expected = compression switch
        {
            Confluent.Kafka.CompressionType.Gzip => Osprey.Protocol.Records.CompressionType.Gzip,
            Confluent.Kafka.CompressionType.Snappy => Osprey.Protocol.Records.CompressionType.Snappy,
            Confluent.Kafka.CompressionType.Lz4 => Osprey.Protocol.Records.CompressionType.Lz4,
            Confluent.Kafka.CompressionType.Zstd => Osprey.Protocol.Records.CompressionType.Zstd,
            _ => Osprey.Protocol.Records.CompressionType.None,
        };
        using var buffer = new PooledBufferWriter();
        var compressedBatches = 0;
        foreach (var frame in broker.All[ApiKey.Produce])
        {
            var (_, produce, _) = Decode<ProduceRequest>(frame);
            var records = produce.TopicData.Single().PartitionData.Single().Records!.Value;
            foreach (var batch in RecordBatch.Enumerate(records.Span))
            {
                Assert.True(batch.VerifyCrc());
                // librdkafka sends a batch uncompressed when compression would not make it smaller.
                Assert.Contains(batch.Header.Compression, new[] { expected, Osprey.Protocol.Records.CompressionType.None });
                compressedBatches += batch.Header.Compression == expected ? 1 : 0;
                Assert.True(batch.Header.ProducerId >= 0, "idempotent batches carry the producer id");
                foreach (var record in batch.GetRecords(buffer))
                {
                    seen.Add((
                        record.IsKeyNull ? null : System.Text.Encoding.UTF8.GetString(record.Key),
                        System.Text.Encoding.UTF8.GetString(record.Value),
                        record.HeaderCount));
                }
            }
        }

        Assert.True(compressedBatches > 0, $"no batch arrived compressed with {expected}");
        Assert.Equal(Count, seen.Count);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(i % 10 == 0 ? null : $"key-{i}", seen[i].Key);
            Assert.Equal($"value-{i}-" + new string((char)('a' + (i % 26)), i % 97), seen[i].Value);
            Assert.Equal(i % 3 == 0 ? 1 : 0, seen[i].Headers);
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AdminCreateTopicsRequestDecodesAndReencodesExactly()
    {
        await using var broker = new CaptureBroker();
        using (var admin = new AdminClientBuilder(new AdminClientConfig
        {
            BootstrapServers = $"127.0.0.1:{broker.Port}",
            ClientId = "golden-admin",
        }).Build())
        {
            await admin.CreateTopicsAsync(
                [
                    new TopicSpecification
                    {
                        Name = "orders",
                        NumPartitions = 6,
                        ReplicationFactor = 1,
                        Configs = new Dictionary<string, string> { ["cleanup.policy"] = "compact", ["retention.ms"] = "3600000" },
                    },
                ],
                new CreateTopicsOptions { OperationTimeout = TimeSpan.FromSeconds(9), RequestTimeout = TimeSpan.FromSeconds(10) });
        }

        var (header, request, _) = Decode<CreateTopicsRequest>(broker.Captured[ApiKey.CreateTopics]);
        Assert.Equal("golden-admin", header.ClientId);
        Assert.Equal(9000, request.TimeoutMs);
        Assert.False(request.ValidateOnly);
        var topic = Assert.Single(request.Topics);
        Assert.Equal("orders", topic.Name);
        Assert.Equal(6, topic.NumPartitions);
        Assert.Equal((short)1, topic.ReplicationFactor);
        Assert.Empty(topic.Assignments);
        Assert.Equal(
            new[] { ("cleanup.policy", "compact"), ("retention.ms", "3600000") },
            topic.Configs.Select(c => (c.Name, c.Value!)).OrderBy(c => c.Item1, StringComparer.Ordinal).ToArray());
        GoldenFiles.SaveIfAsked(broker.All.ToDictionary(p => p.Key, p => p.Value.Last()));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ConsumerFetchRequestDecodesAndReencodesExactly()
    {
        await using var broker = new CaptureBroker();
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = $"127.0.0.1:{broker.Port}",
            ClientId = "golden-consumer",
            GroupId = "unused-group",
            FetchWaitMaxMs = 321,
            FetchMinBytes = 7,
            FetchMaxBytes = 1_048_576,
            MaxPartitionFetchBytes = 65_536,
            IsolationLevel = IsolationLevel.ReadCommitted,
        }).Build())
        {
            consumer.Assign(new TopicPartitionOffset(CaptureBroker.TopicName, 0, 5));
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!broker.Captured.ContainsKey(ApiKey.Fetch) && DateTime.UtcNow < deadline)
            {
                consumer.Consume(TimeSpan.FromMilliseconds(100));
            }

            consumer.Close();
        }

        var (header, request, version) = Decode<FetchRequest>(broker.Captured[ApiKey.Fetch]);
        Assert.Equal("golden-consumer", header.ClientId);
        Assert.Equal(321, request.MaxWaitMs);
        Assert.Equal(7, request.MinBytes);
        Assert.Equal(1_048_576, request.MaxBytes);
        Assert.Equal((sbyte)1, request.IsolationLevel);
        var topic = Assert.Single(request.Topics);
        if (version >= 13)
        {
            Assert.Equal(Guid.Parse("6f1c3b2a-0000-4000-8000-000000000001"), topic.TopicId);
        }
        else
        {
            Assert.Equal(CaptureBroker.TopicName, topic.Topic);
        }

        var partition = Assert.Single(topic.Partitions);
        Assert.Equal(0, partition.Partition);
        Assert.Equal(5, partition.FetchOffset);
        Assert.Equal(65_536, partition.PartitionMaxBytes);
        GoldenFiles.SaveIfAsked(broker.All.ToDictionary(p => p.Key, p => p.Value.Last()));
    }

    private static (RequestHeader Header, T Body, short Version) Decode<T>(byte[] frame)
        where T : IApiMessage, new()
    {
        var body = new T();
        var reader = new KafkaReader(frame);
        var peek = reader;
        var key = (ApiKey)peek.ReadInt16();
        var version = peek.ReadInt16();
        var header = new RequestHeader();
        var headerVersion = ApiMessages.RequestHeaderVersion(key, version);
        header.Read(ref reader, headerVersion);
        Assert.Equal(body.ApiKey, key);
        body.Read(ref reader, version);
        Assert.True(reader.IsAtEnd, $"{typeof(T).Name} v{version}: {reader.Remaining} bytes left over");

        // Exactness: our encoding of what we decoded is byte for byte what the client sent.
        var again = new byte[header.Size(headerVersion) + body.Size(version)];
        var writer = new KafkaWriter(again);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        Assert.Equal(Convert.ToHexString(frame), Convert.ToHexString(again));
        return (header, body, version);
    }
}

/// <summary>With OSPREY_SAVE_GOLDEN=DIR set, writes the captured frames as hex for the codec's golden tests.</summary>
internal static class GoldenFiles
{
    public static void SaveIfAsked(IReadOnlyDictionary<ApiKey, byte[]> captured)
    {
        var dir = Environment.GetEnvironmentVariable("OSPREY_SAVE_GOLDEN");
        if (string.IsNullOrEmpty(dir))
        {
            return;
        }

        Directory.CreateDirectory(dir);
        foreach (var (key, frame) in captured.Where(c => c.Key != ApiKey.Metadata || c.Value.Length > 40))
        {
            var version = (frame[2] << 8) | frame[3];
            File.WriteAllText(Path.Combine(dir, $"librdkafka-2.16-{key}-v{version}.hex"), Convert.ToHexString(frame).ToLowerInvariant() + "\n");
        }
    }
}
