using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Metadata.Tests;

public sealed class MetadataLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "osprey-metadata-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static IVersionedMessage[] Topic(string name, Guid id, int partitions) =>
    [
        new TopicRecord { Name = name, TopicId = id },
        .. Enumerable.Range(0, partitions).Select(p => new PartitionRecord
        {
            PartitionId = p, TopicId = id, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0,
        }),
    ];

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task RecordsAreReplayedIntoTheSameImageAfterARestart()
    {
        var orders = Guid.NewGuid();
        var payments = Guid.NewGuid();
        await using (var logs = new LogManager(_dir, new LogManagerOptions(), TimeProvider.System))
        {
            var metadata = MetadataLog.Open(logs, TimeProvider.System);
            Assert.Empty(metadata.Image.Topics);
            await metadata.AppendAsync(Topic("orders", orders, 3), TestContext.Current.CancellationToken);
            await metadata.AppendAsync(Topic("payments", payments, 1), TestContext.Current.CancellationToken);
            await metadata.AppendAsync(
                [
                    new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = "orders", Name = "retention.ms", Value = "1000" },
                    new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = "orders", Name = "cleanup.policy", Value = "compact" },
                    new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = "orders", Name = "retention.ms", Value = null },
                    new RemoveTopicRecord { TopicId = payments },
                ],
                TestContext.Current.CancellationToken);
            Assert.Equal(["orders"], metadata.Image.Topics.Keys);
        }

        await using (var logs = new LogManager(_dir, new LogManagerOptions(), TimeProvider.System))
        {
            var image = MetadataLog.Open(logs, TimeProvider.System).Image;
            var topic = Assert.Single(image.Topics.Values);
            Assert.Equal(("orders", orders), (topic.Name, topic.TopicId));
            Assert.Equal([0, 1, 2], topic.Partitions.Keys);
            Assert.Equal(new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, topic.Configs);
            Assert.Same(topic, image.Topic(orders));
            Assert.Null(image.Topic(payments));
            Assert.Equal(9, image.LastOffset); // 4 + 2 + 4 records, offsets 0-9
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task UpdatesDecideAgainstTheImageTheyApplyTo()
    {
        await using var logs = new LogManager(_dir, new LogManagerOptions(), TimeProvider.System);
        var metadata = MetadataLog.Open(logs, TimeProvider.System);

        // Twenty concurrent "create topic t if absent": exactly one may create it.
        var creations = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => metadata.UpdateAsync(image =>
            image.Topic("t") is null
                ? ((IReadOnlyList<IVersionedMessage>)Topic("t", Guid.NewGuid(), 1), true)
                : ([], false))));
        Assert.Equal(1, creations.Count(c => c.Result));
        Assert.Single(metadata.Image.Topics);
    }

    private sealed class RecordingPublisher(IMetadataQuorum quorum) : IMetadataPublisher
    {
        public List<(long Before, long After, string[] Created, long SeenByReaders)> Deltas { get; } = [];

        public ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
        {
            Deltas.Add((delta.Before.LastOffset, delta.After.LastOffset, [.. delta.CreatedTopics.Select(t => t.Name)], quorum.Image.LastOffset));
            return ValueTask.CompletedTask;
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PublishersSeeEveryChangeInOrderBeforeTheWriteReturns()
    {
        await using var logs = new LogManager(_dir, new LogManagerOptions(), TimeProvider.System);
        IMetadataQuorum metadata = MetadataLog.Open(logs, TimeProvider.System);
        var publisher = new RecordingPublisher(metadata);
        metadata.AddPublisher(publisher);

        await Task.WhenAll(Enumerable.Range(0, 10).Select(i => metadata.AppendAsync(Topic($"t{i}", Guid.NewGuid(), 2), TestContext.Current.CancellationToken)));
        await metadata.UpdateAsync<int>(_ => ([], 0), TestContext.Current.CancellationToken); // no records: nothing to publish

        // Ten batches of three records, each published once, one after the other, as the image readers already see.
        Assert.Equal(10, publisher.Deltas.Count);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (i * 3L) - 1), publisher.Deltas.Select(d => d.Before));
        Assert.All(publisher.Deltas, d => Assert.Equal((d.Before + 3, d.After), (d.After, d.SeenByReaders)));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"t{i}").Order(), publisher.Deltas.Select(d => Assert.Single(d.Created)).Order());
    }

    [Fact]
    public void ARecordOfAnUnknownTypeIsCorrupt()
    {
        var e = Assert.Throws<KafkaProtocolException>(() => MetadataRecordCodec.Deserialize(new byte[] { 1, 99, 0 }));
        Assert.Equal(ErrorCode.CorruptMessage, e.ErrorCode);
        Assert.Equal(ErrorCode.CorruptMessage, Assert.Throws<KafkaProtocolException>(() => MetadataRecordCodec.Deserialize(new byte[] { 2, 2, 0 })).ErrorCode);
    }

    [Fact]
    public void RecordsRoundTripThroughTheirFraming()
    {
        var id = Guid.NewGuid();
        var bytes = MetadataRecordCodec.Serialize(new PartitionRecord { PartitionId = 7, TopicId = id, Replicas = [1, 2], Isr = [2], Leader = 2, LeaderEpoch = 4, PartitionEpoch = 9 });
        Assert.Equal([1, 3, 1], bytes[..3]); // frame version 1, type 3 (PartitionRecord), version 1 (its newest)
        var record = Assert.IsType<PartitionRecord>(MetadataRecordCodec.Deserialize(bytes));
        Assert.Equal((7, id, 2, 4, 9), (record.PartitionId, record.TopicId, record.Leader, record.LeaderEpoch, record.PartitionEpoch));
        Assert.Equal([1, 2], record.Replicas);
    }
}
