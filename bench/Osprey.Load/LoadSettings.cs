using Confluent.Kafka;

namespace Osprey.Load;

/// <summary>One load run's settings, as given on the command line.</summary>
internal sealed record LoadSettings
{
    public string Bootstrap { get; init; } = "127.0.0.1:9092";

    public string Topic { get; init; } = "";

    public long Records { get; init; } = 1_000_000;

    public int RecordSize { get; init; } = 100;

    public int Partitions { get; init; } = 6;

    /// <summary>Replicas per partition of a topic the run creates.</summary>
    public short ReplicationFactor { get; init; } = 1;

    public Acks Acks { get; init; } = Acks.Leader;

    public double LingerMs { get; init; } = 5;

    public int BatchSize { get; init; } = 1_000_000;

    public CompressionType Compression { get; init; } = CompressionType.None;

    /// <summary>Records per second over all producers; 0 is as fast as possible.</summary>
    public double Rate { get; init; }

    public int Producers { get; init; } = 1;

    public int Consumers { get; init; } = 1;

    /// <summary>
    /// Which client API produce and consume run on: "dotnet" (Confluent.Kafka) or "c" (librdkafka's C API, called
    /// directly, as native tools such as rdkafka_performance do).
    /// </summary>
    public string Api { get; init; } = "dotnet";

    public double WarmupSeconds { get; init; } = 2;

    public double DurationSeconds { get; init; } = 30;

    /// <summary>Extra librdkafka settings (key=value) for every client.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Extra { get; init; } = [];

    public ProducerConfig ProducerConfig(string bootstrap) => With(new ProducerConfig
    {
        BootstrapServers = bootstrap,
        Acks = Acks,
        LingerMs = LingerMs,
        BatchSize = BatchSize,
        CompressionType = Compression,
        QueueBufferingMaxMessages = 1_000_000,
        QueueBufferingMaxKbytes = 1_048_576,
        EnableIdempotence = false,
    });

    // librdkafka's defaults stop fetching for fetch.queue.backoff.ms (1 s) whenever 100,000 records wait in its
    // queue; a .NET loop drains that faster than a second, so a backlog read with them measures the back-off, not
    // the broker. Larger queues and a short back-off keep the client fetching (same settings for every broker).
    public ConsumerConfig ConsumerConfig(string bootstrap, string group) => With(new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = group,
        EnableAutoCommit = false,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnablePartitionEof = false,
        QueuedMinMessages = 1_000_000,
        QueuedMaxMessagesKbytes = 1_000_000,
        FetchQueueBackoffMs = 5,
    });

    private T With<T>(T config)
        where T : ClientConfig
    {
        foreach (var (key, value) in Extra)
        {
            config.Set(key, value);
        }

        return config;
    }
}
