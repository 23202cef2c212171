using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Osprey.Load;

/// <summary>
/// Where a run sends its load: a broker at a bootstrap address, or librdkafka's built-in mock cluster (one mock
/// broker inside this process, the reference ceiling for the client itself). The mock cluster lives as long as
/// the producer that created it; its brokers listen on loopback ports, so consumers reach it like any broker.
/// </summary>
internal sealed class Target : IDisposable
{
    private readonly IProducer<byte[], byte[]>? _mockOwner;

    private Target(string name, string bootstrap, IProducer<byte[], byte[]>? mockOwner)
    {
        Name = name;
        Bootstrap = bootstrap;
        _mockOwner = mockOwner;
    }

    public string Name { get; }

    public string Bootstrap { get; }

    public static Target Broker(string bootstrap) => new("broker", bootstrap, null);

    public static Target Mock()
    {
        var config = new ProducerConfig { BootstrapServers = "mock" };
        config.Set("test.mock.num.brokers", "1");
        var owner = new ProducerBuilder<byte[], byte[]>(config).Build();
        using var admin = new DependentAdminClientBuilder(owner.Handle).Build();
        var broker = admin.GetMetadata(TimeSpan.FromSeconds(10)).Brokers.Single();
        return new Target("mock", $"{broker.Host}:{broker.Port}", owner);
    }

    /// <summary>Creates the topic with the partitions and replicas (an existing one is used as it is).</summary>
    public async Task EnsureTopicAsync(string topic, int partitions, short replicationFactor)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        if (_mockOwner is null)
        {
            try
            {
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = replicationFactor }]).ConfigureAwait(false);
            }
            catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code is ErrorCode.TopicAlreadyExists or ErrorCode.NoError))
            {
            }
        }
        else
        {
            // The mock cluster has no controller for CreateTopics: a producer's metadata request creates the topic
            // with the mock's default partition count.
            using var dependent = new DependentAdminClientBuilder(_mockOwner.Handle).Build();
            dependent.GetMetadata(topic, TimeSpan.FromSeconds(10));
        }

        // Wait until the topic's partitions all have a leader.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(5)).Topics.SingleOrDefault();
            if (metadata is { Error.Code: ErrorCode.NoError } && metadata.Partitions.Count > 0 && metadata.Partitions.All(p => p.Leader >= 0))
            {
                return;
            }

            await Task.Delay(100).ConfigureAwait(false);
        }

        throw new InvalidOperationException($"Topic {topic} did not become ready on {Name} ({Bootstrap}).");
    }

    /// <summary>The partitions of the topic and how many records they hold.</summary>
    public (List<TopicPartition> Partitions, long Records) Backlog(string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Select(p => new TopicPartition(topic, p.PartitionId)).ToList();
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "osprey-load-watermarks" }).Build();
        long records = 0;
        foreach (var partition in partitions)
        {
            var marks = consumer.QueryWatermarkOffsets(partition, TimeSpan.FromSeconds(10));
            records += marks.High.Value - marks.Low.Value;
        }

        return (partitions, records);
    }

    public void Dispose() => _mockOwner?.Dispose();
}
