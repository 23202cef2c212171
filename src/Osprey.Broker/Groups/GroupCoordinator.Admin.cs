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
        var (shard, error) = await ShardAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            described.ErrorCode = (short)error;
            return described;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
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
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>Every group, optionally only those in <paramref name="states"/> (Kafka's state names, any case).</summary>
    public async Task<(ErrorCode Error, List<(string GroupId, string ProtocolType, string State)> Groups)> ListGroupsAsync(IReadOnlyCollection<string> states, CancellationToken cancellationToken)
    {
        if (_loading is null)
        {
            return (ErrorCode.None, []);
        }

        var result = new List<(string, string, string)>();
        foreach (var shard in _shards)
        {
            if (!shard.Loaded)
            {
                return (ErrorCode.CoordinatorLoadInProgress, []);
            }

            await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                result.AddRange(shard.Groups.Values
                    .Where(g => g.State != GroupState.Dead)
                    .Where(g => states.Count == 0 || states.Contains(ClassicGroup.StateName(g.State), StringComparer.OrdinalIgnoreCase))
                    .Select(g => (g.GroupId, g.ProtocolType ?? "", ClassicGroup.StateName(g.State))));
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
}
