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

    public static byte[] ConsumerGroupKey(string group) => Versioned(3, new ConsumerGroupMetadataKey { GroupId = group });

    public static byte[] ConsumerGroupValue(int epoch) => Versioned(0, new ConsumerGroupMetadataValue { Epoch = epoch });

    public static byte[] ConsumerMemberKey(string group, string member) => Versioned(5, new ConsumerGroupMemberMetadataKey { GroupId = group, MemberId = member });

    public static byte[] ConsumerMemberValue(ConsumerMember member) => Versioned(0, new ConsumerGroupMemberMetadataValue
    {
        InstanceId = member.InstanceId,
        RackId = member.RackId,
        ClientId = member.ClientId,
        ClientHost = member.ClientHost,
        SubscribedTopicNames = [.. member.SubscribedTopicNames],
        SubscribedTopicRegex = member.SubscribedTopicRegex,
        RebalanceTimeoutMs = member.RebalanceTimeoutMs,
        ServerAssignor = member.ServerAssignor,
    });

    public static byte[] TargetEpochKey(string group) => Versioned(6, new ConsumerGroupTargetAssignmentMetadataKey { GroupId = group });

    public static byte[] TargetEpochValue(int epoch) => Versioned(0, new ConsumerGroupTargetAssignmentMetadataValue { AssignmentEpoch = epoch });

    public static byte[] TargetMemberKey(string group, string member) => Versioned(7, new ConsumerGroupTargetAssignmentMemberKey { GroupId = group, MemberId = member });

    public static byte[] TargetMemberValue(IEnumerable<(Guid TopicId, int Partition)> target) => Versioned(0, new ConsumerGroupTargetAssignmentMemberValue
    {
        TopicPartitions = Grouped(target).Select(t => new ConsumerGroupTargetAssignmentMemberValue.TopicPartition { TopicId = t.TopicId, Partitions = t.Partitions }).ToList(),
    });

    public static byte[] CurrentAssignmentKey(string group, string member) => Versioned(8, new ConsumerGroupCurrentMemberAssignmentKey { GroupId = group, MemberId = member });

    public static byte[] CurrentAssignmentValue(ConsumerMember member) => Versioned(0, new ConsumerGroupCurrentMemberAssignmentValue
    {
        MemberEpoch = member.MemberEpoch,
        PreviousMemberEpoch = member.PreviousMemberEpoch,
        State = (sbyte)member.State,
        AssignedPartitions = Grouped(member.Assigned).Select(t => new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = t.TopicId, Partitions = t.Partitions }).ToList(),
        PartitionsPendingRevocation = Grouped(member.PendingRevocation).Select(t => new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = t.TopicId, Partitions = t.Partitions }).ToList(),
    });

    /// <summary>Partitions gathered by topic id (ordered), each topic's partitions in order.</summary>
    internal static IEnumerable<(Guid TopicId, List<int> Partitions)> Grouped(IEnumerable<(Guid TopicId, int Partition)> partitions) =>
        partitions.GroupBy(p => p.TopicId).OrderBy(g => g.Key).Select(g => (g.Key, g.Select(p => p.Partition).Order().ToList()));

    /// <summary>What a record says: an offset, a classic group's metadata, or a part of a consumer group (or their removal).</summary>
    public abstract record Parsed;

    public sealed record Offset(string Group, string Topic, int Partition, CommittedOffset? Value) : Parsed;

    public sealed record Group(string GroupId, GroupMetadataValue? Value) : Parsed;

    public sealed record ConsumerGroupEpoch(string GroupId, int? Epoch) : Parsed;

    public sealed record ConsumerMemberMetadata(string GroupId, string MemberId, ConsumerGroupMemberMetadataValue? Value) : Parsed;

    public sealed record TargetEpoch(string GroupId, int? Epoch) : Parsed;

    public sealed record TargetMember(string GroupId, string MemberId, HashSet<(Guid TopicId, int Partition)>? Partitions) : Parsed;

    public sealed record CurrentAssignment(string GroupId, string MemberId, ConsumerGroupCurrentMemberAssignmentValue? Value) : Parsed;

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
                    var v = Value(new OffsetCommitValue(), value);
                    committed = new CommittedOffset(v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp);
                }

                return new Offset(offsetKey.Group, offsetKey.Topic, offsetKey.Partition, committed);
            case 2:
                var groupKey = MessageCodec.Deserialize(new GroupMetadataKey(), key[2..].ToArray(), keyVersion);
                return new Group(groupKey.Group, valueIsNull ? null : Value(new GroupMetadataValue(), value));
            case 3:
                var consumerGroup = MessageCodec.Deserialize(new ConsumerGroupMetadataKey(), key[2..].ToArray(), keyVersion);
                return new ConsumerGroupEpoch(consumerGroup.GroupId, valueIsNull ? null : Value(new ConsumerGroupMetadataValue(), value).Epoch);
            case 5:
                var memberKey = MessageCodec.Deserialize(new ConsumerGroupMemberMetadataKey(), key[2..].ToArray(), keyVersion);
                return new ConsumerMemberMetadata(memberKey.GroupId, memberKey.MemberId, valueIsNull ? null : Value(new ConsumerGroupMemberMetadataValue(), value));
            case 6:
                var targetKey = MessageCodec.Deserialize(new ConsumerGroupTargetAssignmentMetadataKey(), key[2..].ToArray(), keyVersion);
                return new TargetEpoch(targetKey.GroupId, valueIsNull ? null : Value(new ConsumerGroupTargetAssignmentMetadataValue(), value).AssignmentEpoch);
            case 7:
                var targetMemberKey = MessageCodec.Deserialize(new ConsumerGroupTargetAssignmentMemberKey(), key[2..].ToArray(), keyVersion);
                return new TargetMember(
                    targetMemberKey.GroupId,
                    targetMemberKey.MemberId,
                    valueIsNull ? null : Value(new ConsumerGroupTargetAssignmentMemberValue(), value).TopicPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))).ToHashSet());
            case 8:
                var currentKey = MessageCodec.Deserialize(new ConsumerGroupCurrentMemberAssignmentKey(), key[2..].ToArray(), keyVersion);
                return new CurrentAssignment(currentKey.GroupId, currentKey.MemberId, valueIsNull ? null : Value(new ConsumerGroupCurrentMemberAssignmentValue(), value));
            default:
                return null;
        }
    }

    private static T Value<T>(T message, ReadOnlySpan<byte> value)
        where T : IKafkaStruct
    {
        if (value.Length < 2)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, "A __consumer_offsets record value is too short.");
        }

        return MessageCodec.Deserialize(message, value[2..].ToArray(), BinaryPrimitives.ReadInt16BigEndian(value));
    }

    private static byte[] Versioned(short version, IKafkaStruct message) => MessageCodec.SerializeVersioned(message, version);
}
