using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Client;

/// <summary>
/// A group as DescribeGroups (classic) or ConsumerGroupDescribe (KIP-848, type "consumer") reports it, with each
/// member's assigned partitions; for a consumer-protocol group <see cref="Protocol"/> is its server assignor.
/// </summary>
public sealed record GroupInfo(string GroupId, string State, string ProtocolType, string Protocol, IReadOnlyList<GroupMemberInfo> Members, string Type = "classic");

public sealed record GroupMemberInfo(string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, IReadOnlyList<(string Topic, int Partition)> Assignment);

/// <summary>Consumer group calls: coordinator lookup, describe, list, delete, committed offsets.</summary>
public sealed partial class KafkaClient
{
    /// <summary>A connection to the coordinator of <paramref name="groupId"/> (key type 0) or of a transactional id (key type 1).</summary>
    public async Task<BrokerConnection> CoordinatorAsync(string groupId, CancellationToken cancellationToken, sbyte keyType = 0)
    {
        for (var attempt = 0; ; attempt++)
        {
            var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
            var version = connection.VersionFor(ApiKey.FindCoordinator, 4);
            var request = version >= 4 ? new FindCoordinatorRequest { KeyType = keyType, CoordinatorKeys = [groupId] } : new FindCoordinatorRequest { KeyType = keyType, Key = groupId };
            var response = await CallAsync<FindCoordinatorResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
            var (error, message, node) = version >= 4
                ? (response.Coordinators[0].ErrorCode, response.Coordinators[0].ErrorMessage, response.Coordinators[0].NodeId)
                : (response.ErrorCode, response.ErrorMessage, response.NodeId);
            if (error == (short)ErrorCode.CoordinatorNotAvailable && attempt < 20)
            {
                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
                continue;
            }

            KafkaException.ThrowIfError(error, $"Finding the coordinator of {(keyType == 1 ? "transactional id" : "group")} '{groupId}'", message);
            return await NodeAsync(node, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Calls the coordinator of a group (or, with key type 1, of a transactional id), waiting out COORDINATOR_LOAD_IN_PROGRESS.</summary>
    internal async Task<TResponse> GroupCallAsync<TResponse>(
        string groupId, ApiKey key, short maxVersion, Func<short, IApiMessage> request, Func<TResponse, short> error, CancellationToken cancellationToken, sbyte keyType = 0)
        where TResponse : IApiMessage, new()
    {
        for (var attempt = 0; ; attempt++)
        {
            var coordinator = await CoordinatorAsync(groupId, cancellationToken, keyType).ConfigureAwait(false);
            var version = coordinator.VersionFor(key, maxVersion);
            var response = await CallAsync<TResponse>(coordinator, request(version), version, cancellationToken).ConfigureAwait(false);
            if (error(response) == (short)ErrorCode.CoordinatorLoadInProgress && attempt < 40)
            {
                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
                continue;
            }

            return response;
        }
    }

    public async Task<IReadOnlyList<(string GroupId, string State, string ProtocolType, string Type)>> ListGroupsAsync(CancellationToken cancellationToken)
    {
        var (cluster, _) = await MetadataAsync([], cancellationToken).ConfigureAwait(false);
        var result = new List<(string, string, string, string)>();
        foreach (var broker in cluster.Brokers)
        {
            var connection = await NodeAsync(broker.NodeId, cancellationToken).ConfigureAwait(false);
            var version = connection.VersionFor(ApiKey.ListGroups, 5);
            var response = await CallAsync<ListGroupsResponse>(connection, new ListGroupsRequest(), version, cancellationToken).ConfigureAwait(false);
            KafkaException.ThrowIfError(response.ErrorCode, $"Listing the groups of broker {broker.NodeId}");
            result.AddRange(response.Groups.Select(g => (g.GroupId, version >= 4 ? g.GroupState : "", g.ProtocolType, version >= 5 ? g.GroupType : "classic")));
        }

        return result;
    }

    public async Task<GroupInfo> DescribeGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var response = await GroupCallAsync<DescribeGroupsResponse>(
            groupId, ApiKey.DescribeGroups, 6, _ => new DescribeGroupsRequest { Groups = [groupId] }, r => r.Groups[0].ErrorCode, cancellationToken).ConfigureAwait(false);
        var group = response.Groups.Single();
        if (group.ErrorCode == (short)ErrorCode.GroupIdNotFound && await DescribeConsumerGroupAsync(groupId, cancellationToken).ConfigureAwait(false) is { } consumerGroup)
        {
            return consumerGroup;
        }

        // Before v6 an unknown group is a "Dead" one without an error.
        var error = group.ErrorCode == 0 && group.GroupState == "Dead" ? (short)ErrorCode.GroupIdNotFound : group.ErrorCode;
        KafkaException.ThrowIfError(error, $"Describing group '{groupId}'", error == (short)ErrorCode.GroupIdNotFound ? "no such group" : group.ErrorMessage);
        return new GroupInfo(
            group.GroupId,
            group.GroupState,
            group.ProtocolType,
            group.ProtocolData,
            group.Members.Select(m => new GroupMemberInfo(
                m.MemberId,
                m.GroupInstanceId,
                m.ClientId,
                m.ClientHost,
                group.ProtocolType == "consumer" ? ConsumerProtocol.DecodeAssignment(m.MemberAssignment) : [])).ToList());
    }

    /// <summary>A consumer-protocol group (KIP-848) through ConsumerGroupDescribe; null when there is no such group.</summary>
    private async Task<GroupInfo?> DescribeConsumerGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var coordinator = await CoordinatorAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (!coordinator.Supports(ApiKey.ConsumerGroupDescribe))
        {
            return null;
        }

        var response = await GroupCallAsync<ConsumerGroupDescribeResponse>(
            groupId, ApiKey.ConsumerGroupDescribe, 1, _ => new ConsumerGroupDescribeRequest { GroupIds = [groupId] }, r => r.Groups[0].ErrorCode, cancellationToken).ConfigureAwait(false);
        var group = response.Groups.Single();
        if (group.ErrorCode == (short)ErrorCode.GroupIdNotFound)
        {
            return null;
        }

        KafkaException.ThrowIfError(group.ErrorCode, $"Describing group '{groupId}'", group.ErrorMessage);
        return new GroupInfo(
            group.GroupId,
            group.GroupState,
            "consumer",
            group.AssignorName,
            group.Members.Select(m => new GroupMemberInfo(
                m.MemberId,
                m.InstanceId,
                m.ClientId,
                m.ClientHost,
                m.Assignment.TopicPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicName, p))).ToList())).ToList(),
            "consumer");
    }

    public async Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var response = await GroupCallAsync<DeleteGroupsResponse>(
            groupId, ApiKey.DeleteGroups, 2, _ => new DeleteGroupsRequest { GroupsNames = [groupId] }, r => r.Results[0].ErrorCode, cancellationToken).ConfigureAwait(false);
        var result = response.Results.Single();
        KafkaException.ThrowIfError(result.ErrorCode, $"Deleting group '{groupId}'", result.ErrorCode switch
        {
            (short)ErrorCode.GroupIdNotFound => "no such group",
            (short)ErrorCode.NonEmptyGroup => "the group still has members",
            _ => null,
        });
    }

    /// <summary>
    /// Deletes the group's committed offsets of the given partitions (OffsetDelete): refused per partition while a
    /// member of the group subscribes to the topic (GROUP_SUBSCRIBED_TO_TOPIC).
    /// </summary>
    public async Task DeleteOffsetsAsync(string groupId, string topic, IReadOnlyList<int> partitions, CancellationToken cancellationToken)
    {
        var response = await GroupCallAsync<OffsetDeleteResponse>(
            groupId,
            ApiKey.OffsetDelete,
            0,
            _ => new OffsetDeleteRequest { GroupId = groupId, Topics = [new() { Name = topic, Partitions = [.. partitions.Select(p => new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = p })] }] },
            r => r.ErrorCode,
            cancellationToken).ConfigureAwait(false);
        KafkaException.ThrowIfError(response.ErrorCode, $"Deleting offsets of group '{groupId}'", response.ErrorCode == (short)ErrorCode.GroupIdNotFound ? "no such group" : null);
        foreach (var partition in response.Topics.SelectMany(t => t.Partitions))
        {
            KafkaException.ThrowIfError(partition.ErrorCode, $"Deleting the offset of group '{groupId}' for {topic}-{partition.PartitionIndex}", partition.ErrorCode == (short)ErrorCode.GroupSubscribedToTopic ? "a member of the group subscribes to the topic" : null);
        }
    }

    /// <summary>The group's committed offsets (all of its partitions).</summary>
    public async Task<Dictionary<(string Topic, int Partition), long>> CommittedOffsetsAsync(string groupId, CancellationToken cancellationToken)
    {
        var response = await GroupCallAsync<OffsetFetchResponse>(
            groupId,
            ApiKey.OffsetFetch,
            7,
            _ => new OffsetFetchRequest { GroupId = groupId, Topics = null },
            r => r.ErrorCode,
            cancellationToken).ConfigureAwait(false);
        KafkaException.ThrowIfError(response.ErrorCode, $"Fetching the offsets of group '{groupId}'");
        var result = new Dictionary<(string, int), long>();
        foreach (var topic in response.Topics)
        {
            foreach (var partition in topic.Partitions)
            {
                KafkaException.ThrowIfError(partition.ErrorCode, $"Fetching the offset of group '{groupId}' for {topic.Name}-{partition.PartitionIndex}");
                if (partition.CommittedOffset >= 0)
                {
                    result[(topic.Name, partition.PartitionIndex)] = partition.CommittedOffset;
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Commits offsets for a group: as a member (<paramref name="generation"/> and <paramref name="memberId"/>), or
    /// from outside (generation -1, empty member id), which the coordinator accepts only while the group is empty.
    /// </summary>
    public async Task CommitOffsetsAsync(string groupId, IReadOnlyDictionary<(string Topic, int Partition), long> offsets, CancellationToken cancellationToken, int generation = -1, string memberId = "")
    {
        var response = await GroupCallAsync<OffsetCommitResponse>(
            groupId,
            ApiKey.OffsetCommit,
            8,
            _ => new OffsetCommitRequest
            {
                GroupId = groupId,
                GenerationIdOrMemberEpoch = generation,
                MemberId = memberId,
                Topics = offsets.GroupBy(o => o.Key.Topic).Select(t => new OffsetCommitRequest.OffsetCommitRequestTopic
                {
                    Name = t.Key,
                    Partitions = t.Select(p => new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = p.Key.Partition, CommittedOffset = p.Value, CommittedMetadata = "" }).ToList(),
                }).ToList(),
            },
            r => r.Topics.SelectMany(t => t.Partitions).Select(p => p.ErrorCode).FirstOrDefault(),
            cancellationToken).ConfigureAwait(false);
        foreach (var topic in response.Topics)
        {
            foreach (var partition in topic.Partitions)
            {
                KafkaException.ThrowIfError(partition.ErrorCode, $"Committing group '{groupId}' offsets for {topic.Name}-{partition.PartitionIndex}");
            }
        }
    }
}
