using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Broker.Config;
using Osprey.Broker.Topics;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

public class TopicTests
{
    private static IAdminClient Admin(TestBroker broker) =>
        new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CreatedTopicsAppearInMetadataAndSurviveARestart()
    {
        var broker = await TestBroker.StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        using (var admin = Admin(broker))
        {
            await admin.CreateTopicsAsync(
            [
                new TopicSpecification { Name = "orders", NumPartitions = 3, ReplicationFactor = 1, Configs = new() { ["cleanup.policy"] = "compact" } },
                new TopicSpecification { Name = "audit.log", NumPartitions = 1 },
            ]);
            var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
            var orders = Assert.Single(metadata.Topics, t => t.Topic == "orders");
            Assert.Equal([0, 1, 2], orders.Partitions.Select(p => p.PartitionId).Order());
            Assert.All(orders.Partitions, p =>
            {
                Assert.Equal(1, p.Leader);
                Assert.Equal([1], p.Replicas);
                Assert.Equal([1], p.InSyncReplicas);
            });
            Assert.Contains(metadata.Topics, t => t.Topic == "audit.log" && t.Partitions.Count == 1);
        }

        Assert.True(Directory.Exists(Path.Combine(dataDir, "orders-2")));
        await broker.Server.DisposeAsync();

        await using var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir });
        using var again = Admin(restarted);
        var after = again.GetMetadata("orders", TimeSpan.FromSeconds(10));
        Assert.Equal(3, Assert.Single(after.Topics).Partitions.Count);
        Assert.NotNull(restarted.Server.Logs.Get("orders", 2));
        Assert.True(restarted.Server.Logs.Get("orders", 0)!.Config.Compact);
    }

    /// <summary>
    /// CreateTopics v5+ answers every created (or validated) topic with all its configs, the value in force and its
    /// source, sorted by name, and a null error message: Java's AdminClient reads the list unconditionally (a null
    /// one was a NullPointerException in kafka-topics.sh and crashed a Connect worker creating its topics).
    /// </summary>
    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CreateTopicsAnswersWithEveryConfigOfTheNewTopic(bool validateOnly)
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("log.segment.bytes", "1048576")) });
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(
            new CreateTopicsRequest
            {
                TimeoutMs = 5000,
                ValidateOnly = validateOnly,
                Topics = [new() { Name = "with-configs", NumPartitions = 2, ReplicationFactor = 1, Configs = [new() { Name = "retention.ms", Value = "1000" }] }],
            },
            7,
            1);
        var result = Assert.Single((await connection.ReceiveAsync<CreateTopicsResponse>(7)).Body.Topics);
        Assert.Equal((0, null, 2, (short)1), (result.ErrorCode, result.ErrorMessage, result.NumPartitions, result.ReplicationFactor));
        Assert.NotEqual(Guid.Empty, result.TopicId);
        Assert.NotNull(result.Configs);
        Assert.Equal(TopicConfigs.All.Select(c => c.Definition.Name).Order(StringComparer.Ordinal), result.Configs.Select(c => c.Name));
        var configs = result.Configs.ToDictionary(c => c.Name);
        Assert.Equal(("1000", (sbyte)Config.ConfigSource.DynamicTopic), (configs["retention.ms"].Value, configs["retention.ms"].ConfigSource));
        Assert.Equal(("1048576", (sbyte)Config.ConfigSource.StaticBroker), (configs["segment.bytes"].Value, configs["segment.bytes"].ConfigSource));
        Assert.Equal(("delete", (sbyte)Config.ConfigSource.Default), (configs["cleanup.policy"].Value, configs["cleanup.policy"].ConfigSource));
        Assert.All(result.Configs, c => Assert.False(c.ReadOnly || c.IsSensitive));
        Assert.Equal(!validateOnly, broker.Server.Logs.Get("with-configs", 1) is not null);
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData("bad name!", 1, 1, null, ErrorCode.TopicException)]
    [InlineData("too-many-replicas", 1, 3, null, ErrorCode.InvalidReplicationFactor)]
    [InlineData("zero-partitions", 0, 1, null, ErrorCode.InvalidPartitions)]
    [InlineData("bad-config", 1, 1, "retention.ms=soon", ErrorCode.InvalidConfig)]
    [InlineData("unknown-config", 1, 1, "no.such.setting=1", ErrorCode.InvalidConfig)]
    public async Task InvalidTopicsAreRefusedWithKafkasErrorCodes(string name, int partitions, short replication, string? config, ErrorCode expected)
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = Admin(broker);
        var spec = new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = replication };
        if (config is not null)
        {
            spec.Configs = new() { [config.Split('=')[0]] = config.Split('=')[1] };
        }

        var e = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([spec]));
        Assert.Equal(expected, Assert.Single(e.Results).Error.Code);
        Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == name);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CreatingAnExistingTopicIsTopicAlreadyExists()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = Admin(broker);
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "twice", NumPartitions = 1 }]);
        var e = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = "twice", NumPartitions = 2 }]));
        Assert.Equal(ErrorCode.TopicAlreadyExists, Assert.Single(e.Results).Error.Code);
        var collision = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = "a.b", NumPartitions = 1 }, new TopicSpecification { Name = "a_b", NumPartitions = 1 }]));
        Assert.Contains(collision.Results, r => r.Error.Code == ErrorCode.TopicException);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ValidateOnlyCreatesNothing()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = Admin(broker);
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "dry-run", NumPartitions = 4 }], new CreateTopicsOptions { ValidateOnly = true });
        Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == "dry-run" && t.Error.Code == ErrorCode.NoError);
        Assert.Null(broker.Server.Logs.Get("dry-run", 0));
    }
}

public class AutoCreateTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ProducingToANewTopicCreatesItWithNumPartitions()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("num.partitions", "2")) });
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build();
        var delivered = await producer.ProduceAsync("fresh", new Message<Null, string> { Value = "first" }, TestContext.Current.CancellationToken);
        Assert.Equal(0, delivered.Offset.Value);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        Assert.Equal(2, Assert.Single(admin.GetMetadata("fresh", TimeSpan.FromSeconds(10)).Topics).Partitions.Count);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task WithAutoCreationOffUnknownTopicsStayUnknown()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("auto.create.topics.enable", "false")) });
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new Osprey.Protocol.Messages.MetadataRequest { Topics = [new() { Name = "ghost" }], AllowAutoTopicCreation = true }, 12, 1);
        var (_, response) = await connection.ReceiveAsync<Osprey.Protocol.Messages.MetadataResponse>(12);
        Assert.Equal((short)Osprey.Protocol.ErrorCode.UnknownTopicOrPartition, Assert.Single(response.Topics).ErrorCode);
        Assert.Null(broker.Server.Logs.Get("ghost", 0));
    }
}

public class DeleteTopicsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DeletedTopicsLeaveMetadataDiskAndRestarts()
    {
        var broker = await TestBroker.StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "doomed", NumPartitions = 2 }, new TopicSpecification { Name = "kept", NumPartitions = 1 }]);
            await admin.DeleteTopicsAsync(["doomed"]);
            Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == "doomed");
            var e = await Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync(["doomed"]));
            Assert.Equal(ErrorCode.UnknownTopicOrPart, Assert.Single(e.Results).Error.Code);
        }

        Assert.False(Directory.Exists(Path.Combine(dataDir, "doomed-0")));
        Assert.False(Directory.Exists(Path.Combine(dataDir, "doomed-1")));
        await broker.Server.DisposeAsync();
        await using var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir });
        Assert.Null(restarted.Server.Logs.Get("doomed", 0));
        Assert.NotNull(restarted.Server.Logs.Get("kept", 0));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DeleteByTopicIdAtVersion6()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new Osprey.Protocol.Messages.CreateTopicsRequest { Topics = [new() { Name = "by-id", NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 1000 }, 7, 1);
        var (_, created) = await connection.ReceiveAsync<Osprey.Protocol.Messages.CreateTopicsResponse>(7);
        var id = Assert.Single(created.Topics).TopicId;
        Assert.NotEqual(Guid.Empty, id);
        await connection.SendAsync(new Osprey.Protocol.Messages.DeleteTopicsRequest { Topics = [new() { TopicId = id }, new() { TopicId = Guid.NewGuid() }], TimeoutMs = 1000 }, 6, 2);
        var (_, deleted) = await connection.ReceiveAsync<Osprey.Protocol.Messages.DeleteTopicsResponse>(6);
        Assert.Equal(("by-id", (short)0), (deleted.Responses[0].Name, deleted.Responses[0].ErrorCode));
        Assert.Equal((short)Osprey.Protocol.ErrorCode.UnknownTopicId, deleted.Responses[1].ErrorCode);
    }
}

public class CreatePartitionsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PartitionsCanBeAddedButNeverRemoved()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "growing", NumPartitions = 2 }]);
        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "growing", IncreaseTo = 5 }]);
        Assert.Equal(5, Assert.Single(admin.GetMetadata("growing", TimeSpan.FromSeconds(10)).Topics).Partitions.Count);
        Assert.NotNull(broker.Server.Logs.Get("growing", 4));

        var shrink = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "growing", IncreaseTo = 3 }]));
        Assert.Equal(ErrorCode.InvalidPartitions, Assert.Single(shrink.Results).Error.Code);
        var unknown = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "nope", IncreaseTo = 3 }]));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, Assert.Single(unknown.Results).Error.Code);
        var badAssignment = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync(
            [new PartitionsSpecification { Topic = "growing", IncreaseTo = 6, ReplicaAssignments = [[2]] }]));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, Assert.Single(badAssignment.Results).Error.Code);
    }
}

public class DescribeTopicPartitionsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PagesThroughTopicsAndPartitionsWithACursor()
    {
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "b-topic", NumPartitions = 3 }, new TopicSpecification { Name = "a-topic", NumPartitions = 2 }]);
        }

        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var seen = new List<(string, int)>();
        DescribeTopicPartitionsRequest.CursorData? cursor = null;
        var pages = 0;
        do
        {
            var response = await IdempotenceTests.CallAsync<DescribeTopicPartitionsResponse>(connection, new DescribeTopicPartitionsRequest { ResponsePartitionLimit = 2, Cursor = cursor }, 0);
            seen.AddRange(response.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name!, p.PartitionIndex))));
            Assert.All(response.Topics.SelectMany(t => t.Partitions), p => Assert.Equal((1, "1", "1"), (p.LeaderId, string.Join(",", p.ReplicaNodes), string.Join(",", p.IsrNodes))));
            cursor = response.NextCursor is { } next ? new() { TopicName = next.TopicName, PartitionIndex = next.PartitionIndex } : null;
            pages++;
        }
        while (cursor is not null);

        Assert.Equal([("a-topic", 0), ("a-topic", 1), ("b-topic", 0), ("b-topic", 1), ("b-topic", 2)], seen);
        Assert.Equal(3, pages);

        var named = await IdempotenceTests.CallAsync<DescribeTopicPartitionsResponse>(connection, new DescribeTopicPartitionsRequest { Topics = [new() { Name = "missing" }, new() { Name = "b-topic" }] }, 0);
        Assert.Equal([("b-topic", 0, 3), ("missing", (short)Osprey.Protocol.ErrorCode.UnknownTopicOrPartition, 0)], named.Topics.Select(t => (t.Name!, t.ErrorCode, t.Partitions.Count)));
        var badCursor = await IdempotenceTests.CallAsync<DescribeTopicPartitionsResponse>(connection, new DescribeTopicPartitionsRequest { Topics = [new() { Name = "a-topic" }], Cursor = new() { TopicName = "b-topic" } }, 0);
        Assert.Equal((short)Osprey.Protocol.ErrorCode.InvalidRequest, Assert.Single(badCursor.Topics).ErrorCode);
    }
}

public class ManyPartitionsTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ATopicWithSixHundredPartitionsTakesAndGivesBackAMessageOnEach()
    {
        const int Partitions = 600;
        await using var broker = await TestBroker.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "wide", NumPartitions = Partitions }]);
            var metadata = admin.GetMetadata("wide", TimeSpan.FromSeconds(10));
            Assert.Equal(Partitions, Assert.Single(metadata.Topics).Partitions.Count);
        }

        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap, LingerMs = 20 }).Build())
        {
            await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => producer.ProduceAsync(new TopicPartition("wide", p), new Message<Null, string> { Value = $"p{p}" })));
        }

        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused" }).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset("wide", p, Offset.Beginning)));
        var received = new Dictionary<int, string>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (received.Count < Partitions && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } result)
            {
                received[result.Partition.Value] = result.Message.Value;
            }
        }

        Assert.Equal(Enumerable.Range(0, Partitions).Select(p => $"p{p}"), Enumerable.Range(0, Partitions).Select(p => received.GetValueOrDefault(p)));
    }
}
