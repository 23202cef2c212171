using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Groups;

/// <summary>What operators ask of groups: describe, list, delete.</summary>
public sealed partial class GroupCoordinator
{
    /// <summary>A group as DescribeGroups reports it; an unknown group is "Dead" (GROUP_ID_NOT_FOUND from v6).</summary>
    public async Task<DescribeGroupsResponse.DescribedGroup> DescribeGroupAsync(string groupId, short version, CancellationToken cancellationToken)
    {
        var described = new DescribeGroupsResponse.DescribedGroup { GroupId = groupId, GroupState = "Dead", ProtocolType = "", ProtocolData = "" };
        return await InShardAsync(groupId, error => { described.ErrorCode = (short)error; return described; }, shard =>
        {
            if (shard.ConsumerGroups.ContainsKey(groupId))
            {
                described.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                described.ErrorMessage = version >= 6 ? $"Group {groupId} is not a classic group." : null;
                return described;
            }

            if (!shard.Groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead)
            {
                if (version >= 6)
                {
                    described.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                    described.ErrorMessage = $"Group {groupId} not found.";
                }

                return described;
            }

            described.GroupState = ClassicGroup.StateName(group.State);
            described.ProtocolType = group.ProtocolType ?? "";
            described.ProtocolData = group.State == GroupState.Stable ? group.ProtocolName ?? "" : "";
            described.Members = group.Members.Values.Select(m => new DescribeGroupsResponse.DescribedGroupMember
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                MemberMetadata = group.State == GroupState.Stable ? m.MetadataFor(group.ProtocolName) : [],
                MemberAssignment = group.State == GroupState.Stable ? m.Assignment : [],
            }).ToList();
            return described;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Every group this broker coordinates with its type ("classic" or "consumer"), optionally only those in
    /// <paramref name="states"/> (Kafka's state names, any case). On a cluster, clients ask every broker.
    /// </summary>
    public async Task<(ErrorCode Error, List<(string GroupId, string ProtocolType, string State, string Type)> Groups)> ListGroupsAsync(IReadOnlyCollection<string> states, CancellationToken cancellationToken)
    {
        if (!AllLoaded && _metadata.Image.Topic(TopicName) is not null)
        {
            return (ErrorCode.CoordinatorLoadInProgress, []);
        }

        var result = new List<(string, string, string, string)>();
        foreach (var shard in Shards.Where(s => s.Loaded))
        {

            await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                result.AddRange(shard.Groups.Values
                    .Where(g => g.State != GroupState.Dead)
                    .Where(g => states.Count == 0 || states.Contains(ClassicGroup.StateName(g.State), StringComparer.OrdinalIgnoreCase))
                    .Select(g => (g.GroupId, g.ProtocolType ?? "", ClassicGroup.StateName(g.State), "classic")));
                result.AddRange(shard.ConsumerGroups.Values
                    .Where(g => states.Count == 0 || states.Contains(g.StateName, StringComparer.OrdinalIgnoreCase))
                    .Select(g => (g.GroupId, "consumer", g.StateName, "consumer")));
            }
            finally
            {
                shard.Lock.Release();
            }
        }

        return (ErrorCode.None, result);
    }

    /// <summary>Deletes an empty group and its offsets (NON_EMPTY_GROUP while it has members).</summary>
    public async Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return error;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (shard.ConsumerGroups.TryGetValue(groupId, out var consumerGroup))
            {
                return await DeleteConsumerGroupAsync(shard, consumerGroup).ConfigureAwait(false);
            }

            if (!shard.Groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead)
            {
                return ErrorCode.GroupIdNotFound;
            }

            if (group.State != GroupState.Empty)
            {
                return ErrorCode.NonEmptyGroup;
            }

            var records = (shard.Offsets.GetValueOrDefault(groupId)?.Keys ?? Enumerable.Empty<(string, int)>())
                .Select(k => (GroupRecords.OffsetKey(groupId, k.Item1, k.Item2), (byte[]?)null))
                .Append((GroupRecords.GroupKey(groupId), null))
                .ToList();
            await WriteAsync(shard, records).ConfigureAwait(false);
            group.TransitionTo(GroupState.Dead, NowMs);
            shard.Groups.Remove(groupId);
            shard.Offsets.Remove(groupId);
            return ErrorCode.None;
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>Deletes an empty consumer group: its offsets, target and epoch records become tombstones.</summary>
    private async Task<ErrorCode> DeleteConsumerGroupAsync(CoordinatorShard shard, ConsumerGroup group)
    {
        if (group.Members.Count > 0)
        {
            return ErrorCode.NonEmptyGroup;
        }

        var records = (shard.Offsets.GetValueOrDefault(group.GroupId)?.Keys ?? Enumerable.Empty<(string, int)>())
            .Select(k => (GroupRecords.OffsetKey(group.GroupId, k.Item1, k.Item2), (byte[]?)null))
            .Append((GroupRecords.TargetEpochKey(group.GroupId), null))
            .Append((GroupRecords.ConsumerGroupKey(group.GroupId), null))
            .ToList();
        await WriteAsync(shard, records).ConfigureAwait(false);
        group.Deleted = true;
        shard.ConsumerGroups.Remove(group.GroupId);
        shard.Offsets.Remove(group.GroupId);
        return ErrorCode.None;
    }

    /// <summary>A consumer group as ConsumerGroupDescribe reports it: epochs, assignor, members with current and target assignments.</summary>
    public async Task<ConsumerGroupDescribeResponse.DescribedGroup> DescribeConsumerGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var described = new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = groupId, GroupState = "Dead", AssignorName = "" };
        return await InShardAsync(groupId, error => { described.ErrorCode = (short)error; return described; }, shard =>
        {
            if (!shard.ConsumerGroups.TryGetValue(groupId, out var group))
            {
                described.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                described.ErrorMessage = shard.Groups.TryGetValue(groupId, out var classic) && classic.State != GroupState.Dead
                    ? $"Group {groupId} is not a consumer group."
                    : $"Group {groupId} not found.";
                return described;
            }

            var image = _metadata.Image;
            ConsumerGroupDescribeResponse.Assignment Describe(IEnumerable<(Guid TopicId, int Partition)> partitions) => new()
            {
                TopicPartitions = GroupRecords.Grouped(partitions)
                    .Select(t => new ConsumerGroupDescribeResponse.TopicPartitions { TopicId = t.TopicId, TopicName = image.Topic(t.TopicId)?.Name ?? "", Partitions = t.Partitions })
                    .OrderBy(t => t.TopicName, StringComparer.Ordinal)
                    .ToList(),
            };

            described.GroupState = group.StateName;
            described.GroupEpoch = group.GroupEpoch;
            described.AssignmentEpoch = group.AssignmentEpoch;
            described.AssignorName = group.AssignorName(Options.ConsumerAssignors.FirstOrDefault() ?? "uniform");
            described.Members = group.Members.Values.Select(m => new ConsumerGroupDescribeResponse.Member
            {
                MemberId = m.MemberId,
                InstanceId = m.InstanceId,
                RackId = m.RackId,
                MemberEpoch = m.MemberEpoch,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                SubscribedTopicNames = [.. m.SubscribedTopicNames],
                SubscribedTopicRegex = m.SubscribedTopicRegex,
                Assignment = Describe(m.Assigned),
                TargetAssignment = Describe(group.TargetOf(m.MemberId)),
                MemberType = 1,
            }).ToList();
            return described;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="action"/> on the group's shard under its lock; when the shard is not available,
    /// <paramref name="unavailable"/> says what to answer.
    /// </summary>
    private async Task<T> InShardAsync<T>(string groupId, Func<ErrorCode, T> unavailable, Func<CoordinatorShard, T> action, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return unavailable(error);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return action(shard);
        }
        finally
        {
            shard.Lock.Release();
        }
    }
}
