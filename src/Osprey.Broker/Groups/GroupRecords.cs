using System.Buffers.Binary;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Groups;

/// <summary>An offset a group committed for a partition.</summary>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string? Metadata, long CommitTimestamp);

/// <summary>
/// Encoding of the __consumer_offsets records: an int16 version before each key and value (key version 1 = an
/// offset commit, 2 = group metadata).
/// </summary>
public static class GroupRecords
{
    private const short OffsetKeyVersion = 1;
    private const short GroupKeyVersion = 2;
    private const short OffsetValueVersion = 3;
    private const short GroupValueVersion = 3;

    public static byte[] OffsetKey(string group, string topic, int partition) =>
        Versioned(OffsetKeyVersion, new OffsetCommitKey { Group = group, Topic = topic, Partition = partition });

    public static byte[] OffsetValue(CommittedOffset offset) =>
        Versioned(OffsetValueVersion, new OffsetCommitValue { Offset = offset.Offset, LeaderEpoch = offset.LeaderEpoch, Metadata = offset.Metadata ?? "", CommitTimestamp = offset.CommitTimestamp });

    public static byte[] GroupKey(string group) => Versioned(GroupKeyVersion, new GroupMetadataKey { Group = group });

    public static byte[] GroupValue(ClassicGroup group) => Versioned(GroupValueVersion, new GroupMetadataValue
    {
        ProtocolType = group.ProtocolType ?? "",
        Generation = group.Generation,
        Protocol = group.ProtocolName,
        Leader = group.LeaderId,
        CurrentStateTimestamp = group.StateTimestamp,
        Members = group.Members.Values.Select(m => new GroupMetadataValue.MemberMetadata
        {
            MemberId = m.MemberId,
            GroupInstanceId = m.GroupInstanceId,
            ClientId = m.ClientId,
            ClientHost = m.ClientHost,
            RebalanceTimeout = m.RebalanceTimeoutMs,
            SessionTimeout = m.SessionTimeoutMs,
            Subscription = m.MetadataFor(group.ProtocolName),
            Assignment = m.Assignment,
        }).ToList(),
    });

    /// <summary>What a record says: an offset (or its removal) or a group's metadata (or its removal).</summary>
    public abstract record Parsed;

    public sealed record Offset(string Group, string Topic, int Partition, CommittedOffset? Value) : Parsed;

    public sealed record Group(string GroupId, GroupMetadataValue? Value) : Parsed;

    /// <summary>Decodes a record; null for a key version this broker does not know (left alone).</summary>
    public static Parsed? Parse(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool valueIsNull)
    {
        if (key.Length < 2)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, "A __consumer_offsets record key is too short.");
        }

        var keyVersion = BinaryPrimitives.ReadInt16BigEndian(key);
        switch (keyVersion)
        {
            case 0 or 1:
                var offsetKey = MessageCodec.Deserialize(new OffsetCommitKey(), key[2..].ToArray(), keyVersion);
                CommittedOffset? committed = null;
                if (!valueIsNull)
                {
                    var v = MessageCodec.Deserialize(new OffsetCommitValue(), value[2..].ToArray(), BinaryPrimitives.ReadInt16BigEndian(value));
                    committed = new CommittedOffset(v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp);
                }

                return new Offset(offsetKey.Group, offsetKey.Topic, offsetKey.Partition, committed);
            case 2:
                var groupKey = MessageCodec.Deserialize(new GroupMetadataKey(), key[2..].ToArray(), keyVersion);
                return new Group(groupKey.Group, valueIsNull ? null : MessageCodec.Deserialize(new GroupMetadataValue(), value[2..].ToArray(), BinaryPrimitives.ReadInt16BigEndian(value)));
            default:
                return null;
        }
    }

    private static byte[] Versioned(short version, IKafkaStruct message) => MessageCodec.SerializeVersioned(message, version);
}
