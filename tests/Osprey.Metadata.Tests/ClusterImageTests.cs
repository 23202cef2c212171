using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Metadata.Tests;

/// <summary>
/// The records a cluster's metadata adds (brokers, partition changes, feature levels): how the image takes them, and
/// their bytes on disk, which must not drift (a metadata log written today is replayed by every later version).
/// </summary>
public class ClusterImageTests
{
    private static readonly Guid TopicId = Guid.Parse("0b7c1d0e-5a7f-4a2b-9a51-3f1f5c2d6e70");

    /// <summary>Applies the records through the on-disk framing, each at the next offset (shared with the delta tests).</summary>
    internal static ClusterImage Apply(ClusterImage image, params IVersionedMessage[] records)
    {
        foreach (var record in records)
        {
            // Through the on-disk framing, as a replay would see them.
            image = image.Apply(MetadataRecordCodec.Deserialize(MetadataRecordCodec.Serialize(record)), image.LastOffset + 1);
        }

        return image;
    }

    private static RegisterBrokerRecord Register(int id, long epoch) => new()
    {
        BrokerId = id,
        BrokerEpoch = epoch,
        IncarnationId = Guid.NewGuid(),
        EndPoints = [new() { Name = "PLAINTEXT", Host = "127.0.0.1", Port = (ushort)(19090 + id), SecurityProtocol = 0 }],
        Features = [new() { Name = "metadata.version", MinSupportedVersion = 7, MaxSupportedVersion = 25 }],
        Rack = "r" + id,
    };

    [Fact]
    public void ABrokerRegistersFencedIsUnfencedAndOnlyItsCurrentEpochChangesIt()
    {
        var image = Apply(ClusterImage.Empty, Register(2, 10));
        var broker = image.Brokers[2];
        Assert.True(broker.Fenced);
        Assert.Equal(("PLAINTEXT", "127.0.0.1", 19092, "r2"), (broker.Endpoints[0].Name, broker.Endpoints[0].Host, broker.Endpoints[0].Port, broker.Rack));
        Assert.Equal(((short)7, (short)25), broker.SupportedFeatures["metadata.version"]);

        image = Apply(image, new UnfenceBrokerRecord { Id = 2, Epoch = 10 });
        Assert.False(image.Brokers[2].Fenced);
        image = Apply(image, new BrokerRegistrationChangeRecord { BrokerId = 2, BrokerEpoch = 10, InControlledShutdown = 1 });
        Assert.Equal((false, true), (image.Brokers[2].Fenced, image.Brokers[2].InControlledShutdown));

        // A record for an older registration of the same id changes nothing.
        image = Apply(image, Register(2, 11), new FenceBrokerRecord { Id = 2, Epoch = 10 }, new UnregisterBrokerRecord { BrokerId = 2, BrokerEpoch = 10 });
        Assert.Equal((11L, true, false), (image.Brokers[2].Epoch, image.Brokers[2].Fenced, image.Brokers[2].InControlledShutdown));
        image = Apply(image, new UnfenceBrokerRecord { Id = 2, Epoch = 11 }, new BrokerRegistrationChangeRecord { BrokerId = 2, BrokerEpoch = 11, Fenced = 1 });
        Assert.True(image.Brokers[2].Fenced);
        image = Apply(image, new UnregisterBrokerRecord { BrokerId = 2, BrokerEpoch = 11 });
        Assert.Empty(image.Brokers);
    }

    [Fact]
    public void APartitionChangeSetsWhatItNamesAndMovesTheEpochsOn()
    {
        var image = Apply(
            ClusterImage.Empty,
            new TopicRecord { Name = "orders", TopicId = TopicId },
            new PartitionRecord { PartitionId = 0, TopicId = TopicId, Replicas = [1, 2, 3], Isr = [1, 2, 3], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0 });

        // The ISR shrinks: the partition epoch moves, the leader and its epoch stay.
        image = Apply(image, new PartitionChangeRecord { PartitionId = 0, TopicId = TopicId, Isr = [1, 2] });
        var partition = image.Topic("orders")!.Partitions[0];
        Assert.Equal((1, 0, 1), (partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch));
        Assert.Equal([1, 2], partition.Isr);
        Assert.Equal([1, 2, 3], partition.Replicas);

        // A new leader: both epochs move. No leader at all (-1) is a leader change too.
        image = Apply(image, new PartitionChangeRecord { PartitionId = 0, TopicId = TopicId, Leader = 2, Isr = [2], EligibleLeaderReplicas = [1] });
        partition = image.Topic("orders")!.Partitions[0];
        Assert.Equal((2, 1, 2), (partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch));
        Assert.Equal([1], partition.EligibleLeaderReplicas);
        image = Apply(image, new PartitionChangeRecord { PartitionId = 0, TopicId = TopicId, Leader = -1, LeaderRecoveryState = 1 });
        partition = image.Topic("orders")!.Partitions[0];
        Assert.Equal((-1, 2, 3, (sbyte)1), (partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch, partition.LeaderRecoveryState));
        Assert.Equal([1], partition.EligibleLeaderReplicas); // unchanged: the record left it null

        // The same leader set again still bumps its epoch (the controller does so to fence an old leader's requests).
        image = Apply(image, new PartitionChangeRecord { PartitionId = 0, TopicId = TopicId, Leader = 3, Replicas = [3, 2], AddingReplicas = [], RemovingReplicas = [1] });
        image = Apply(image, new PartitionChangeRecord { PartitionId = 0, TopicId = TopicId, Leader = 3 });
        partition = image.Topic("orders")!.Partitions[0];
        Assert.Equal((3, 4, 5), (partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch));
        Assert.Equal([3, 2], partition.Replicas);
        Assert.Equal([1], partition.RemovingReplicas);

        // A change for a partition or topic that does not exist changes nothing.
        var before = image;
        image = Apply(image, new PartitionChangeRecord { PartitionId = 5, TopicId = TopicId, Leader = 1 }, new PartitionChangeRecord { PartitionId = 0, TopicId = Guid.NewGuid(), Leader = 1 });
        Assert.Equal(before.Topics["orders"].Partitions[0], image.Topics["orders"].Partitions[0]);
    }

    [Fact]
    public void FeatureLevelsAreFinalizedAndLevelZeroRemovesOne()
    {
        var image = Apply(ClusterImage.Empty, new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 25 }, new FeatureLevelRecord { Name = "kraft.version", FeatureLevel = 1 });
        Assert.Equal(25, image.FinalizedFeatures["metadata.version"]);
        image = Apply(image, new FeatureLevelRecord { Name = "kraft.version", FeatureLevel = 0 });
        Assert.Equal(["metadata.version"], image.FinalizedFeatures.Keys);
    }

    [Fact]
    public void TheNewRecordsKeepTheirBytesOnDisk()
    {
        // Frame version 1, record type, record version 0, then the fields (flexible: a tagged-field count at the end).
        Assert.Equal(
            "010700" + "00000005" + "0000000000000007" + "00",
            Convert.ToHexString(MetadataRecordCodec.Serialize(new FenceBrokerRecord { Id = 5, Epoch = 7 })).ToLowerInvariant());
        Assert.Equal(
            "010800" + "00000005" + "0000000000000007" + "00",
            Convert.ToHexString(MetadataRecordCodec.Serialize(new UnfenceBrokerRecord { Id = 5, Epoch = 7 })).ToLowerInvariant());
        Assert.Equal(
            "010500" + "00000002" + new string('0', 32) + "03" + "00000001" + "00000002" + "00000001" + "000000" + "ff" + "0000" + "00",
            Convert.ToHexString(MetadataRecordCodec.Serialize(new PartitionChangeRecord { PartitionId = 2, TopicId = Guid.Empty, Isr = [1, 2], Leader = 1 })).ToLowerInvariant());
        Assert.Equal(
            "010c00" + "0e" + Convert.ToHexString("kraft.version"u8).ToLowerInvariant() + "0001" + "00",
            Convert.ToHexString(MetadataRecordCodec.Serialize(new FeatureLevelRecord { Name = "kraft.version", FeatureLevel = 1 })).ToLowerInvariant());
        Assert.Equal(
            "011100" + "00000003" + "0000000000000009" + "ff" + "01" + "00",
            Convert.ToHexString(MetadataRecordCodec.Serialize(new BrokerRegistrationChangeRecord { BrokerId = 3, BrokerEpoch = 9, InControlledShutdown = 1 })).ToLowerInvariant());

        // PartitionRecord version 1: removing and adding replicas after the ISR, the recovery state after the
        // leader, the eligible leader replicas at the end.
        Assert.Equal(
            "010301" + "00000007" + new string('0', 32) + "03" + "00000001" + "00000002" + "02" + "00000002" + "02" + "00000001" + "01" + "00000002" + "01" +
            "00000004" + "00000009" + "02" + "00000001" + "01" + "00",
            Convert.ToHexString(MetadataRecordCodec.Serialize(new PartitionRecord
            {
                PartitionId = 7, TopicId = Guid.Empty, Replicas = [1, 2], Isr = [2], RemovingReplicas = [1], Leader = 2, LeaderRecoveryState = 1,
                LeaderEpoch = 4, PartitionEpoch = 9, EligibleLeaderReplicas = [1],
            })).ToLowerInvariant());
    }

    [Fact]
    public void AVersionZeroPartitionRecordFromAnOlderLogStillReplays()
    {
        // The bytes every metadata log written before clustering holds for a partition: version 0, without the
        // reassignment, recovery and ELR fields.
        var v0 = Convert.FromHexString(
            "010300" + "00000007" + TopicId.ToString("N") + "03" + "00000001" + "00000002" + "02" + "00000002" + "00000002" + "00000004" + "00000009" + "00");
        var image = Apply(ClusterImage.Empty, new TopicRecord { Name = "orders", TopicId = TopicId });
        image = image.Apply(MetadataRecordCodec.Deserialize(v0), image.LastOffset + 1);
        var partition = image.Topic("orders")!.Partitions[7];
        Assert.Equal((2, 4, 9, (sbyte)0), (partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch, partition.LeaderRecoveryState));
        Assert.Equal([1, 2], partition.Replicas);
        Assert.Equal([2], partition.Isr);
        Assert.True(partition.AddingReplicas.IsEmpty && partition.RemovingReplicas.IsEmpty && partition.EligibleLeaderReplicas.IsEmpty && partition.LastKnownElr.IsEmpty);

        // Written again today it is version 1 and reads back the same.
        var again = Assert.IsType<PartitionRecord>(MetadataRecordCodec.Deserialize(MetadataRecordCodec.Serialize(MetadataRecordCodec.Deserialize(v0))));
        Assert.Equal((7, TopicId, 2, 4, 9), (again.PartitionId, again.TopicId, again.Leader, again.LeaderEpoch, again.PartitionEpoch));
        Assert.Equal(v0, MetadataRecordCodec.Serialize(again, 0));
    }
}
