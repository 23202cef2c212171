using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

public class AdminTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DescribeClusterNamesTheNodeAndCluster()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        var cluster = await admin.DescribeClusterAsync();
        Assert.Equal(broker.Server.Identity.ClusterId, cluster.ClusterId);
        Assert.Matches("^[A-Za-z0-9_-]{22}$", cluster.ClusterId);
        Assert.Equal(1, cluster.Controller.Id);
        var node = Assert.Single(cluster.Nodes);
        Assert.Equal((1, "127.0.0.1", broker.Server.Port), (node.Id, node.Host, node.Port));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DeleteRecordsMovesTheLowWatermark()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "trimmed", NumPartitions = 1 }]);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                await producer.ProduceAsync("trimmed", new Message<Null, string> { Value = $"v{i}" }, TestContext.Current.CancellationToken);
            }
        }

        var result = await admin.DeleteRecordsAsync([new TopicPartitionOffset("trimmed", 0, 6)]);
        Assert.Equal(6, Assert.Single(result).Offset.Value);
        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused" }).Build();
        var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition("trimmed", 0), TimeSpan.FromSeconds(10));
        Assert.Equal((6, 10), (watermarks.Low.Value, watermarks.High.Value));
        var e = await Assert.ThrowsAsync<DeleteRecordsException>(() => admin.DeleteRecordsAsync([new TopicPartitionOffset("trimmed", 0, 11)]));
        Assert.Equal(ErrorCode.OffsetOutOfRange, Assert.Single(e.Results).Error.Code);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task OffsetForLeaderEpochGivesTheEpochsEndOffset()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new MetadataRequest { Topics = [new() { Name = "epochs" }], AllowAutoTopicCreation = true }, 12, 1);
        await connection.ReceiveAsync<MetadataResponse>(12);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            for (var i = 0; i < 4; i++)
            {
                await producer.ProduceAsync("epochs", new Message<Null, string> { Value = $"v{i}" }, TestContext.Current.CancellationToken);
            }
        }

        var request = new OffsetForLeaderEpochRequest
        {
            Topics = [new() { Topic = "epochs", Partitions = [new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = 0 }, new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = 3 }, new() { Partition = 9, LeaderEpoch = 0 }] }],
        };
        await connection.SendAsync(request, 4, 2);
        var (_, response) = await connection.ReceiveAsync<OffsetForLeaderEpochResponse>(4);
        var partitions = Assert.Single(response.Topics).Partitions;
        Assert.Equal((0, 0, 4L), (partitions[0].ErrorCode, partitions[0].LeaderEpoch, partitions[0].EndOffset));
        Assert.Equal((short)Osprey.Protocol.ErrorCode.UnknownLeaderEpoch, partitions[1].ErrorCode);
        Assert.Equal((short)Osprey.Protocol.ErrorCode.UnknownTopicOrPartition, partitions[2].ErrorCode);
    }
}

public class DescribeConfigsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TopicConfigsReportValuesAndSources()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "configured", NumPartitions = 1, Configs = new() { ["retention.ms"] = "1000", ["cleanup.policy"] = "compact,delete" } }]);
        var result = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "configured" }]));
        var retention = result.Entries["retention.ms"];
        Assert.Equal(("1000", false, ConfigSource.DynamicTopicConfig), (retention.Value, retention.IsDefault, retention.Source));
        Assert.Equal(["retention.ms"], retention.Synonyms.Select(s => s.Name));
        Assert.Equal("compact,delete", result.Entries["cleanup.policy"].Value);
        var segment = result.Entries["segment.bytes"];
        Assert.Equal(("1073741824", true, ConfigSource.DefaultConfig), (segment.Value, segment.IsDefault, segment.Source));
        Assert.Equal(33, result.Entries.Count);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task BrokerConfigsAndUnknownTopics()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        var brokerConfigs = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }]));
        Assert.Equal("1", brokerConfigs.Entries["node.id"].Value);
        Assert.Equal("604800000", brokerConfigs.Entries["log.retention.ms"].Value);
        var e = await Assert.ThrowsAsync<DescribeConfigsException>(() => admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "missing" }]));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, Assert.Single(e.Results).Error.Code);
    }

    [Fact]
    public void EveryDefaultIsValidAndEveryTopicDefaultHasABrokerSetting()
    {
        Assert.All(Osprey.Broker.Topics.TopicConfigs.All, d => Assert.Null(Osprey.Broker.Topics.TopicConfigs.Validate(d.Definition.Name, d.Definition.Default)));
        Assert.All(
            Osprey.Broker.Topics.TopicConfigs.All.Where(d => d.ServerDefault is not null),
            d => Assert.True(Osprey.Broker.Config.BrokerSettings.Find(d.ServerDefault!)?.Dynamic, d.ServerDefault));
        Assert.All(Osprey.Broker.Config.BrokerSettings.All.Values, d => Assert.Null(d.Validate(d.Default)));
    }
}

public class AlterConfigsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task IncrementalAlterConfigsSetsDeletesAppendsAndTheLogsFollow()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "tuned", NumPartitions = 2, Configs = new() { ["segment.ms"] = "3600000" } }]);
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = "tuned" };
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] =
            [
                new ConfigEntry { Name = "retention.ms", Value = "5000", IncrementalOperation = AlterConfigOpType.Set },
                new ConfigEntry { Name = "segment.ms", IncrementalOperation = AlterConfigOpType.Delete },
                new ConfigEntry { Name = "cleanup.policy", Value = "compact", IncrementalOperation = AlterConfigOpType.Append },
            ],
        });
        var described = Assert.Single(await admin.DescribeConfigsAsync([resource])).Entries;
        Assert.Equal("5000", described["retention.ms"].Value);
        Assert.True(described["segment.ms"].IsDefault);
        Assert.Equal("delete,compact", described["cleanup.policy"].Value);
        var log = broker.Server.Logs.Get("tuned", 1)!;
        Assert.Equal((5000L, true, true), (log.Config.RetentionMs, log.Config.Compact, log.Config.Delete));

        var e = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "retention.ms", Value = "later", IncrementalOperation = AlterConfigOpType.Set }],
        }));
        Assert.Equal(ErrorCode.InvalidConfig, Assert.Single(e.Results).Error.Code);
        Assert.Equal(5000, broker.Server.Logs.Get("tuned", 0)!.Config.RetentionMs);
    }

    /// <summary>Config errors carry Kafka's wording and codes, so tools and people see the messages they know.</summary>
    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData((sbyte)2, "flush.ms", "5", 40, "Can't APPEND to key flush.ms because its type is not LIST.")]
    [InlineData((sbyte)3, "flush.ms", "5", 40, "Can't SUBTRACT to key flush.ms because its type is not LIST.")]
    [InlineData((sbyte)0, "retention.ms", "soon", 40, "Invalid value soon for configuration retention.ms: Not a number of type LONG")]
    [InlineData((sbyte)0, "segment.bytes", "1", 40, "Invalid value 1 for configuration segment.bytes: Value must be at least 14")]
    [InlineData((sbyte)0, "cleanup.policy", "sometimes", 40, "Invalid value sometimes for configuration cleanup.policy: String must be one of: compact, delete")]
    [InlineData((sbyte)0, "retention.ms", null, 42, "Null value not supported for : retention.ms")]
    [InlineData((sbyte)0, "no.such", "1", 40, "Unknown topic config name: no.such")]
    public async Task IncrementalAlterConfigsErrorsAreWordedAsKafkaWordsThem(sbyte operation, string name, string? value, short code, string message)
    {
        await using var broker = await TestBroker.StartAsync();
        await TransactionTests.CreateAsync(broker, "worded", 1);
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new IncrementalAlterConfigsRequest { Resources = [new() { ResourceType = 2, ResourceName = "worded", Configs = [new() { Name = name, ConfigOperation = operation, Value = value }] }] }, 1, 1);
        var result = Assert.Single((await connection.ReceiveAsync<IncrementalAlterConfigsResponse>(1)).Body.Responses);
        Assert.Equal((code, message), (result.ErrorCode, result.ErrorMessage));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task LegacyAlterConfigsReplacesAllOverrides()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "replaced", NumPartitions = 1, Configs = new() { ["retention.ms"] = "1000" } }]);
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = "replaced" };
#pragma warning disable CS0618 // AlterConfigsAsync is the legacy API under test
        await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = [new ConfigEntry { Name = "max.message.bytes", Value = "2000000" }] });
#pragma warning restore CS0618
        var described = Assert.Single(await admin.DescribeConfigsAsync([resource])).Entries;
        Assert.True(described["retention.ms"].IsDefault);
        Assert.Equal("2000000", described["max.message.bytes"].Value);
    }
}

public class DescribeLogDirsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task LogDirsReportPartitionSizes()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "sized", NumPartitions = 2 }]);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await producer.ProduceAsync(new TopicPartition("sized", 1), new Message<Null, string> { Value = new string('x', 500) }, TestContext.Current.CancellationToken);
        }

        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new DescribeLogDirsRequest { Topics = null }, 4, 1);
        var (_, response) = await connection.ReceiveAsync<DescribeLogDirsResponse>(4);
        var dir = Assert.Single(response.Results);
        Assert.Equal(broker.Server.Logs.DataDirectory, dir.LogDir);
        Assert.True(dir.TotalBytes > 0 && dir.UsableBytes > 0);
        var partitions = Assert.Single(dir.Topics, t => t.Name == "sized").Partitions.OrderBy(p => p.PartitionIndex).ToList();
        Assert.Equal([0, 1], partitions.Select(p => p.PartitionIndex));
        Assert.Equal(0, partitions[0].PartitionSize);
        Assert.True(partitions[1].PartitionSize > 500);
    }
}
