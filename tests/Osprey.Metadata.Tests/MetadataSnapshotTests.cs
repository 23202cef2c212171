using Osprey.Protocol.Messages;

namespace Osprey.Metadata.Tests;

/// <summary>
/// A snapshot rebuilds the image it was taken of, every kind of state included; a snapshot cut short, altered or of
/// another format is refused with a message naming it.
/// </summary>
public class MetadataSnapshotTests
{
    private static readonly Guid Orders = Guid.Parse("5f0c8a3e-6b0e-4d5c-9a51-0c1f5c2d6e71");

    [Fact]
    public void ASnapshotRebuildsEveryPartOfTheImage()
    {
        var image = Rich();
        var bytes = MetadataSnapshot.Write(image);
        var restored = MetadataSnapshot.Read(bytes, "test.snapshot");

        Assert.Equal(image.LastOffset, restored.LastOffset);
        Assert.Equal(Describe(image), Describe(restored));
        Assert.Equal(bytes, MetadataSnapshot.Write(restored));

        var partition = restored.Topic(Orders)!.Partitions[1];
        Assert.Equal([2, 3], partition.Isr);
        Assert.Equal((3, 5, 6, (sbyte)1), (partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch, partition.LeaderRecoveryState));
        Assert.Equal([2], partition.AddingReplicas);
        Assert.Equal([3], partition.EligibleLeaderReplicas);
        Assert.Equal([1], partition.LastKnownElr);
        Assert.Equal(("r2", true, 40L), (restored.Brokers[2].Rack, restored.Brokers[2].Fenced, restored.Brokers[2].Epoch));
        Assert.Equal("compact", restored.Topic("orders")!.Configs["cleanup.policy"]);
        Assert.Equal("2", restored.BrokerConfigsOf("").GetValueOrDefault("min.insync.replicas"));
        Assert.Equal(5000, restored.NextProducerId);
        Assert.Equal(4096, restored.ScramCredentials["alice"][1].Iterations);
        Assert.Equal((short)25, restored.FinalizedFeatures["metadata.version"]);
        Assert.Equal("c5oSNZK2T1yhyf0GmpX5Yw", restored.ClusterId);

        // An empty image makes a snapshot too.
        Assert.Equal(-1, MetadataSnapshot.Read(MetadataSnapshot.Write(ClusterImage.Empty), "empty").LastOffset);
    }

    [Fact]
    public void ADamagedSnapshotIsRefusedNamingTheFile()
    {
        var bytes = MetadataSnapshot.Write(Rich());
        for (var at = 0; at < bytes.Length; at += 7)
        {
            var damaged = (byte[])bytes.Clone();
            damaged[at] ^= 0x20;
            var e = Assert.Throws<CorruptMetadataException>(() => MetadataSnapshot.Read(damaged, "snap-42"));
            Assert.Contains("snap-42", e.Message, StringComparison.Ordinal);
        }

        Assert.Throws<CorruptMetadataException>(() => MetadataSnapshot.Read(bytes.AsSpan(0, bytes.Length - 1), "cut"));
        Assert.Throws<CorruptMetadataException>(() => MetadataSnapshot.Read([], "none"));
    }

    private static ClusterImage Rich() => ClusterImageTests.Apply(
        ClusterImage.Empty,
        new ClusterIdentityRecord { ClusterId = "c5oSNZK2T1yhyf0GmpX5Yw" },
        new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 25 },
        new RegisterBrokerRecord
        {
            BrokerId = 2,
            BrokerEpoch = 40,
            IncarnationId = Guid.NewGuid(),
            EndPoints = [new() { Name = "PLAINTEXT", Host = "127.0.0.1", Port = 19092 }],
            Features = [new() { Name = "metadata.version", MinSupportedVersion = 7, MaxSupportedVersion = 25 }],
            Rack = "r2",
        },
        new ConfigRecord { ResourceType = ClusterImage.BrokerResource, ResourceName = "", Name = "min.insync.replicas", Value = "2" },
        new TopicRecord { Name = "orders", TopicId = Orders },
        new PartitionRecord { TopicId = Orders, PartitionId = 0, Replicas = [1, 2, 3], Isr = [1, 2, 3], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0 },
        new PartitionRecord
        {
            TopicId = Orders,
            PartitionId = 1,
            Replicas = [2, 3, 1],
            Isr = [2, 3],
            Leader = 3,
            LeaderEpoch = 5,
            PartitionEpoch = 6,
            AddingReplicas = [2],
            EligibleLeaderReplicas = [3],
            LastKnownElr = [1],
            LeaderRecoveryState = 1,
        },
        new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = "orders", Name = "cleanup.policy", Value = "compact" },
        new UserScramCredentialRecord { Name = "alice", Mechanism = 1, Salt = [1, 2], StoredKey = [3, 4], ServerKey = [5, 6], Iterations = 4096 },
        new ProducerIdsRecord { BrokerId = 1, BrokerEpoch = 40, NextProducerId = 5000 });

    /// <summary>The image as the bytes of its records: equal bytes, equal images.</summary>
    private static string Describe(ClusterImage image) =>
        string.Join(",", MetadataSnapshot.ToRecords(image).Select(r => Convert.ToHexString(MetadataRecordCodec.Serialize(r))));
}
