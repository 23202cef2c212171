using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Metadata;

/// <summary>Record type ids, as Kafka's KRaft metadata records number them.</summary>
public enum MetadataRecordType : short
{
    RegisterBroker = 0,
    UnregisterBroker = 1,
    Topic = 2,
    Partition = 3,
    Config = 4,
    PartitionChange = 5,
    FenceBroker = 7,
    UnfenceBroker = 8,
    RemoveTopic = 9,
    UserScramCredential = 11,
    FeatureLevel = 12,
    ProducerIds = 15,
    BrokerRegistrationChange = 17,
    RemoveUserScramCredential = 22,

    /// <summary>Osprey's own: the cluster id, which Kafka's `kafka-storage format` would have written on every node.</summary>
    ClusterIdentity = 10000,
}

/// <summary>
/// The value of one metadata record: <c>[frame version uvarint = 1][record type uvarint][record version uvarint]</c>
/// followed by the record itself.
/// </summary>
public static class MetadataRecordCodec
{
    public const int FrameVersion = 1;

    /// <summary>The record at its newest version; every older version still reads (a log is never rewritten).</summary>
    public static byte[] Serialize(IVersionedMessage record) => Serialize(record, record.HighestSupportedVersion);

    /// <summary>The record at <paramref name="version"/> (tests write old versions to check that they replay).</summary>
    public static byte[] Serialize(IVersionedMessage record, short version)
    {
        var type = TypeOf(record);
        var size = KafkaSize.UnsignedVarInt(FrameVersion) + KafkaSize.UnsignedVarInt((uint)type) + KafkaSize.UnsignedVarInt((uint)version) + record.Size(version);
        var bytes = new byte[size];
        var writer = new KafkaWriter(bytes);
        writer.WriteUnsignedVarInt(FrameVersion);
        writer.WriteUnsignedVarInt((uint)type);
        writer.WriteUnsignedVarInt((uint)version);
        record.Write(ref writer, version);
        return bytes;
    }

    public static IVersionedMessage Deserialize(ReadOnlyMemory<byte> value)
    {
        var reader = new KafkaReader(value);
        var frame = reader.ReadUnsignedVarInt();
        if (frame != FrameVersion)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"Metadata record frame version {frame} is not {FrameVersion}.");
        }

        var type = (MetadataRecordType)reader.ReadUnsignedVarInt();
        var version = (short)reader.ReadUnsignedVarInt();
        IVersionedMessage record = type switch
        {
            MetadataRecordType.RegisterBroker => new RegisterBrokerRecord(),
            MetadataRecordType.UnregisterBroker => new UnregisterBrokerRecord(),
            MetadataRecordType.PartitionChange => new PartitionChangeRecord(),
            MetadataRecordType.FenceBroker => new FenceBrokerRecord(),
            MetadataRecordType.UnfenceBroker => new UnfenceBrokerRecord(),
            MetadataRecordType.FeatureLevel => new FeatureLevelRecord(),
            MetadataRecordType.BrokerRegistrationChange => new BrokerRegistrationChangeRecord(),
            MetadataRecordType.Topic => new TopicRecord(),
            MetadataRecordType.Partition => new PartitionRecord(),
            MetadataRecordType.Config => new ConfigRecord(),
            MetadataRecordType.RemoveTopic => new RemoveTopicRecord(),
            MetadataRecordType.ProducerIds => new ProducerIdsRecord(),
            MetadataRecordType.UserScramCredential => new UserScramCredentialRecord(),
            MetadataRecordType.RemoveUserScramCredential => new RemoveUserScramCredentialRecord(),
            MetadataRecordType.ClusterIdentity => new ClusterIdentityRecord(),
            _ => throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"Unknown metadata record type {(short)type}."),
        };
        record.Read(ref reader, version);
        return record;
    }

    private static MetadataRecordType TypeOf(IVersionedMessage record) => record switch
    {
        RegisterBrokerRecord => MetadataRecordType.RegisterBroker,
        UnregisterBrokerRecord => MetadataRecordType.UnregisterBroker,
        PartitionChangeRecord => MetadataRecordType.PartitionChange,
        FenceBrokerRecord => MetadataRecordType.FenceBroker,
        UnfenceBrokerRecord => MetadataRecordType.UnfenceBroker,
        FeatureLevelRecord => MetadataRecordType.FeatureLevel,
        BrokerRegistrationChangeRecord => MetadataRecordType.BrokerRegistrationChange,
        TopicRecord => MetadataRecordType.Topic,
        PartitionRecord => MetadataRecordType.Partition,
        ConfigRecord => MetadataRecordType.Config,
        RemoveTopicRecord => MetadataRecordType.RemoveTopic,
        ProducerIdsRecord => MetadataRecordType.ProducerIds,
        UserScramCredentialRecord => MetadataRecordType.UserScramCredential,
        RemoveUserScramCredentialRecord => MetadataRecordType.RemoveUserScramCredential,
        ClusterIdentityRecord => MetadataRecordType.ClusterIdentity,
        _ => throw new ArgumentException($"{record.GetType().Name} is not a metadata record.", nameof(record)),
    };
}
