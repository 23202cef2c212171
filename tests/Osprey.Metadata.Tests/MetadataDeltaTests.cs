using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Metadata.Tests;

/// <summary>What a delta between two images reports, and how a broker sorts it into its own replicas' changes.</summary>
public class MetadataDeltaTests
{
    private static readonly Guid Orders = Guid.Parse("6a0f3c55-2f1e-4c9b-8d5e-0c2a1b3d4e5f");
    private static readonly Guid Payments = Guid.Parse("1d2c3b4a-5e6f-4071-8293-a4b5c6d7e8f9");

    private static ClusterImage Apply(ClusterImage image, params IVersionedMessage[] records) => ClusterImageTests.Apply(image, records);

    private static PartitionRecord Partition(Guid topic, int id, int[] replicas, int leader) =>
        new() { TopicId = topic, PartitionId = id, Replicas = [.. replicas], Isr = [.. replicas], Leader = leader, LeaderEpoch = 0, PartitionEpoch = 0 };

    private static RegisterBrokerRecord Register(int id, long epoch) => new()
    {
        BrokerId = id,
        BrokerEpoch = epoch,
        IncarnationId = Guid.NewGuid(),
        EndPoints = [new() { Name = "PLAINTEXT", Host = "127.0.0.1", Port = (ushort)(19090 + id), SecurityProtocol = 0 }],
    };

    private static ClusterImage TwoTopics() => Apply(
        ClusterImage.Empty,
        new TopicRecord { Name = "orders", TopicId = Orders },
        Partition(Orders, 0, [1, 2, 3], 1),
        Partition(Orders, 1, [2, 3, 1], 2),
        new TopicRecord { Name = "payments", TopicId = Payments },
        Partition(Payments, 0, [3, 1], 3),
        Register(1, 100),
        Register(2, 101));

    [Fact]
    public void AnImageComparedWithItselfHasNoChanges()
    {
        var image = TwoTopics();
        var delta = MetadataDelta.Between(image, image);
        Assert.True(delta.IsEmpty);

        // Nor does an image whose only change is a record about something that does not exist.
        var moved = Apply(image, new PartitionChangeRecord { TopicId = Guid.NewGuid(), PartitionId = 0, Leader = 1 });
        Assert.True(moved.LastOffset > image.LastOffset);
        Assert.True(MetadataDelta.Between(image, moved).IsEmpty);
    }

    [Fact]
    public void FromNothingEveryTopicPartitionAndBrokerIsNew()
    {
        var delta = MetadataDelta.Between(ClusterImage.Empty, TwoTopics());
        Assert.Equal(["orders", "payments"], delta.CreatedTopics.Select(t => t.Name));
        Assert.Equal([("orders", 0), ("orders", 1), ("payments", 0)], delta.ChangedPartitions.Select(p => (p.Topic, p.After.PartitionId)));
        Assert.All(delta.ChangedPartitions, p => Assert.Null(p.Before));
        Assert.Equal([1, 2], delta.ChangedBrokers.Select(b => b.Id));
        Assert.All(delta.ChangedBrokers, b => Assert.Null(b.Before));
        Assert.Empty(delta.DeletedTopics);
    }

    [Fact]
    public void OnlyWhatChangedIsReported()
    {
        var before = TwoTopics();
        var after = Apply(
            before,
            new PartitionChangeRecord { TopicId = Orders, PartitionId = 1, Isr = [2, 3] },
            new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = "payments", Name = "retention.ms", Value = "1000" },
            new ConfigRecord { ResourceType = ClusterImage.BrokerResource, ResourceName = "2", Name = "log.cleaner.threads", Value = "2" },
            new UnfenceBrokerRecord { Id = 2, Epoch = 101 },
            new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 25 });
        var delta = MetadataDelta.Between(before, after);

        var change = Assert.Single(delta.ChangedPartitions);
        Assert.Equal(("orders", 1), (change.Topic, change.After.PartitionId));
        Assert.Equal([2, 3, 1], change.Before!.Isr);
        Assert.Equal([2, 3], change.After.Isr);
        Assert.Equal(["payments"], delta.ChangedTopicConfigs);
        Assert.Equal(["2"], delta.ChangedBrokerConfigs);
        var broker = Assert.Single(delta.ChangedBrokers);
        Assert.Equal((2, true, false), (broker.Id, broker.Before!.Fenced, broker.After!.Fenced));
        Assert.True(delta.FeaturesChanged);
        Assert.False(delta.ScramCredentialsChanged);
        Assert.Empty(delta.CreatedTopics);
        Assert.Empty(delta.DeletedTopics);

        // A config set to the value it already had is no change.
        var same = Apply(after, new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = "payments", Name = "retention.ms", Value = "1000" });
        Assert.True(MetadataDelta.Between(after, same).IsEmpty);
    }

    [Fact]
    public void ATopicDeletedAndCreatedAgainUnderItsNameIsADeletionAndACreation()
    {
        var before = TwoTopics();
        var renewed = Guid.Parse("99999999-8888-4777-8666-555555555555");
        var after = Apply(before, new RemoveTopicRecord { TopicId = Orders }, new TopicRecord { Name = "orders", TopicId = renewed }, Partition(renewed, 0, [1], 1), new UnregisterBrokerRecord { BrokerId = 1, BrokerEpoch = 100 });
        var delta = MetadataDelta.Between(before, after);
        Assert.Equal(Orders, Assert.Single(delta.DeletedTopics).TopicId);
        Assert.Equal(renewed, Assert.Single(delta.CreatedTopics).TopicId);
        var partition = Assert.Single(delta.ChangedPartitions);
        Assert.Equal((renewed, (PartitionImage?)null), (partition.TopicId, partition.Before));
        var gone = Assert.Single(delta.ChangedBrokers);
        Assert.Equal((1, (BrokerImage?)null), (gone.Id, gone.After));
    }

    [Fact]
    public void ABrokerSortsTheChangesIntoPartitionsItLeadsFollowsOrNoLongerHolds()
    {
        var before = TwoTopics();
        var after = Apply(
            before,
            new PartitionChangeRecord { TopicId = Orders, PartitionId = 0, Leader = 3 },                    // 3 leads now, 1 follows
            new PartitionChangeRecord { TopicId = Orders, PartitionId = 1, Replicas = [2, 3], Isr = [2, 3] }, // 1 removed
            new RemoveTopicRecord { TopicId = Payments });                                                    // 1 and 3 held it

        var delta = MetadataDelta.Between(before, after);
        var one = delta.LocalChanges(1);
        Assert.Empty(one.Leaders);
        Assert.Equal([("orders", 0)], one.Followers.Select(p => (p.Topic, p.After.PartitionId)));
        Assert.Equal([("orders", 1), ("payments", 0)], one.Deletes.Select(d => (d.Topic, d.Partition)));

        var three = delta.LocalChanges(3);
        Assert.Equal([("orders", 0)], three.Leaders.Select(p => (p.Topic, p.After.PartitionId)));
        Assert.Equal([("orders", 1)], three.Followers.Select(p => (p.Topic, p.After.PartitionId)));
        Assert.Equal([("payments", 0)], three.Deletes.Select(d => (d.Topic, d.Partition)));

        var four = delta.LocalChanges(4);
        Assert.True(four.Leaders.IsEmpty && four.Followers.IsEmpty && four.Deletes.IsEmpty);
    }
}
