using System.Text;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Groups;

/// <summary>Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and the expiry of empty groups' offsets.</summary>
public sealed partial class GroupCoordinator
{
    /// <summary>
    /// Commits offsets. A commit with generation -1 and no member id comes from outside group management and is
    /// accepted only while the group has no members; otherwise the member and generation must be current.
    /// </summary>
    public async Task<OffsetCommitResponse> CommitOffsetsAsync(OffsetCommitRequest request, Func<string, int, bool> partitionExists, CancellationToken cancellationToken)
    {
        var entries = request.Topics.SelectMany(t => t.Partitions.Select(p => new OffsetToCommit(t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata))).ToList();
        var errors = await CommitAsync(request.GroupId, entries, partitionExists, shard => AdmitCommit(shard, request), transactional: null, cancellationToken).ConfigureAwait(false);
        var i = 0;
        return new OffsetCommitResponse
        {
            Topics = request.Topics.Select(t => new OffsetCommitResponse.OffsetCommitResponseTopic
            {
                Name = t.Name,
                TopicId = t.TopicId,
                Partitions = t.Partitions.Select(p => new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)errors[i++] }).ToList(),
            }).ToList(),
        };
    }

    /// <summary>Whether a plain commit may act on the group (creating an empty classic group for a commit from outside group management).</summary>
    private ErrorCode AdmitCommit(CoordinatorShard shard, OffsetCommitRequest request)
    {
        if (shard.ConsumerGroups.TryGetValue(request.GroupId, out var consumerGroup))
        {
            return CheckConsumerMember(consumerGroup, request.MemberId, request.GenerationIdOrMemberEpoch);
        }

        shard.Groups.TryGetValue(request.GroupId, out var group);
        var managed = request.GenerationIdOrMemberEpoch >= 0 || request.MemberId.Length > 0 || request.GroupInstanceId is not null;
        if (group is null)
        {
            if (managed)
            {
                return ErrorCode.IllegalGeneration;
            }

            shard.Groups[request.GroupId] = new ClassicGroup(request.GroupId, NowMs);
            return ErrorCode.None;
        }

        if (group.State == GroupState.Dead)
        {
            return ErrorCode.CoordinatorNotAvailable;
        }

        if (!managed)
        {
            return group.State == GroupState.Empty ? ErrorCode.None : ErrorCode.UnknownMemberId;
        }

        var error = CheckMember(group, request.MemberId, request.GroupInstanceId, request.GenerationIdOrMemberEpoch, out var member);
        if (error == ErrorCode.None && group.State == GroupState.CompletingRebalance)
        {
            error = ErrorCode.RebalanceInProgress;
        }

        if (error == ErrorCode.None)
        {
            ScheduleSession(shard, group, member!);
        }

        return error;
    }

    /// <summary>One partition's offset in a commit request.</summary>
    private readonly record struct OffsetToCommit(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata);

    /// <summary>
    /// What OffsetCommit and TxnOffsetCommit share. Under the group's shard lock, <paramref name="admit"/> decides
    /// whether the commit may act on the group (its error then goes to every partition); each partition is checked
    /// (UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE); the accepted offsets are written and fsynced, then
    /// applied — or, for a <paramref name="transactional"/> producer's commit, held pending until its transaction
    /// ends. Returns an error per entry.
    /// </summary>
    private async Task<ErrorCode[]> CommitAsync(
        string groupId,
        IReadOnlyList<OffsetToCommit> entries,
        Func<string, int, bool> partitionExists,
        Func<CoordinatorShard, ErrorCode> admit,
        (long ProducerId, short Epoch)? transactional,
        CancellationToken cancellationToken)
    {
        var errors = new ErrorCode[entries.Count];
        var (shard, error) = await ShardAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            Array.Fill(errors, error);
            return errors;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            error = admit(shard);
            if (error != ErrorCode.None)
            {
                Array.Fill(errors, error);
                return errors;
            }

            var now = NowMs;
            var records = new List<(byte[], byte[]?)>();
            var accepted = new List<(OffsetToCommit Entry, CommittedOffset Offset)>();
            for (var i = 0; i < entries.Count; i++)
            {
                var entry = entries[i];
                if (!partitionExists(entry.Topic, entry.Partition))
                {
                    errors[i] = ErrorCode.UnknownTopicOrPartition;
                }
                else if (entry.Metadata is { } metadata && Encoding.UTF8.GetByteCount(metadata) > Options.MaxMetadataBytes)
                {
                    errors[i] = ErrorCode.OffsetMetadataTooLarge;
                }
                else
                {
                    var offset = new CommittedOffset(entry.Offset, entry.LeaderEpoch, entry.Metadata, now);
                    records.Add((GroupRecords.OffsetKey(groupId, entry.Topic, entry.Partition), GroupRecords.OffsetValue(offset)));
                    accepted.Add((entry, offset));
                }
            }

            try
            {
                await WriteAsync(shard, records, transactional).ConfigureAwait(false);
            }
            catch (Storage.KafkaStorageException)
            {
                Array.Fill(errors, ErrorCode.CoordinatorNotAvailable);
                return errors;
            }
            catch (KafkaProtocolException e) when (transactional is not null)
            {
                Array.Fill(errors, e.ErrorCode == ErrorCode.InvalidProducerEpoch ? ErrorCode.ProducerFenced : ErrorCode.CoordinatorNotAvailable);
                return errors;
            }

            foreach (var (entry, offset) in accepted)
            {
                if (transactional is { } producer)
                {
                    shard.PendingOf(producer.ProducerId)[(groupId, entry.Topic, entry.Partition)] = offset;
                }
                else
                {
                    shard.OffsetsOf(groupId)[(entry.Topic, entry.Partition)] = offset;
                }
            }

            return errors;
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>
    /// Whether a commit (or fetch) may act on a consumer-protocol group: without member id and epoch only while the
    /// group has no members; otherwise from a member at its current epoch (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).
    /// </summary>
    private static ErrorCode CheckConsumerMember(ConsumerGroup group, string? memberId, int memberEpoch)
    {
        if (string.IsNullOrEmpty(memberId) && memberEpoch < 0)
        {
            return group.Members.Count == 0 ? ErrorCode.None : ErrorCode.UnknownMemberId;
        }

        if (memberId is null || !group.Members.TryGetValue(memberId, out var member))
        {
            return ErrorCode.UnknownMemberId;
        }

        return memberEpoch == member.MemberEpoch ? ErrorCode.None : ErrorCode.StaleMemberEpoch;
    }

    /// <summary>A group's committed offsets: all of them (topics null) or the partitions named (-1 where none).</summary>
    public async Task<(ErrorCode Error, List<(string Topic, List<(int Partition, CommittedOffset? Offset)> Partitions)> Topics)> FetchOffsetsAsync(
        string groupId, IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)>? topics, CancellationToken cancellationToken, string? memberId = null, int memberEpoch = -1, bool requireStable = false)
    {
        var (shard, error) = await ShardAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return (error, []);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (memberId is not null && shard.ConsumerGroups.TryGetValue(groupId, out var consumerGroup)
                && CheckConsumerMember(consumerGroup, memberId, memberEpoch) is var check and not ErrorCode.None)
            {
                return (check, []);
            }

            if (requireStable && shard.HasPendingOffsets(groupId))
            {
                return (ErrorCode.UnstableOffsetCommit, []); // a transaction's offsets are not settled yet: ask again
            }

            var offsets = shard.Offsets.GetValueOrDefault(groupId) ?? [];
            var result = topics is null
                ? offsets.GroupBy(o => o.Key.Topic).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => (g.Key, g.OrderBy(o => o.Key.Partition).Select(o => (o.Key.Partition, (CommittedOffset?)o.Value)).ToList())).ToList()
                : topics.Select(t => (t.Topic, t.Partitions.Select(p => (p, offsets.GetValueOrDefault((t.Topic, p)))).ToList())).ToList();
            return (ErrorCode.None, result);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    public async Task<OffsetDeleteResponse> DeleteOffsetsAsync(OffsetDeleteRequest request, CancellationToken cancellationToken)
    {
        var response = new OffsetDeleteResponse();
        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            response.ErrorCode = (short)error;
            return response;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            HashSet<string> subscribed;
            if (shard.ConsumerGroups.TryGetValue(request.GroupId, out var consumerGroup))
            {
                subscribed = consumerGroup.SubscribedTopics.Keys.ToHashSet(StringComparer.Ordinal);
            }
            else if (!shard.Groups.TryGetValue(request.GroupId, out var group) || group.State == GroupState.Dead)
            {
                response.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                return response;
            }
            else if (group.ProtocolType is { } type && type != "consumer" && group.State != GroupState.Empty)
            {
                response.ErrorCode = (short)ErrorCode.NonEmptyGroup;
                return response;
            }
            else
            {
                subscribed = group.State == GroupState.Empty ? [] : SubscribedTopics(group);
            }

            var records = new List<(byte[], byte[]?)>();
            var offsets = shard.Offsets.GetValueOrDefault(request.GroupId);
            foreach (var topic in request.Topics)
            {
                var topicResponse = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = topic.Name };
                response.Topics.Add(topicResponse);
                foreach (var partition in topic.Partitions)
                {
                    var busy = subscribed.Contains(topic.Name);
                    topicResponse.Partitions.Add(new() { PartitionIndex = partition.PartitionIndex, ErrorCode = (short)(busy ? ErrorCode.GroupSubscribedToTopic : ErrorCode.None) });
                    if (!busy && offsets is not null && offsets.ContainsKey((topic.Name, partition.PartitionIndex)))
                    {
                        records.Add((GroupRecords.OffsetKey(request.GroupId, topic.Name, partition.PartitionIndex), null));
                    }
                }
            }

            await WriteAsync(shard, records).ConfigureAwait(false);
            foreach (var topic in request.Topics.Where(t => !subscribed.Contains(t.Name)))
            {
                foreach (var partition in topic.Partitions)
                {
                    offsets?.Remove((topic.Name, partition.PartitionIndex));
                }
            }

            return response;
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>The topics a consumer group's members subscribe to (from their consumer protocol subscriptions).</summary>
    private static HashSet<string> SubscribedTopics(ClassicGroup group)
    {
        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var member in group.Members.Values)
        {
            var metadata = member.MetadataFor(group.ProtocolName);
            if (metadata.Length < 2)
            {
                continue;
            }

            try
            {
                topics.UnionWith(MessageCodec.DeserializeVersioned(new ConsumerProtocolSubscription(), metadata, 3).Topics);
            }
            catch (KafkaProtocolException)
            {
                // Not a consumer subscription we can read: nothing to protect.
            }
        }

        return topics;
    }

    /// <summary>
    /// Removes every group's committed offsets of topics that were deleted, as Kafka does: a topic created again
    /// under the same name is a new topic (a new id, an empty log), and inherited offsets would show no lag for
    /// records nobody read, or make a consumer skip records where an old offset falls inside the new log.
    /// </summary>
    private Task RemoveOffsetsOfDeletedTopicsAsync(IReadOnlyCollection<string> topics) =>
        ForEachLoadedShardAsync(shard => RemoveOffsetsAsync(shard, topics.Contains));

    /// <summary>Tombstones (and forgets) the committed offsets of every group in the shard whose topic <paramref name="gone"/> says is deleted.</summary>
    private async Task RemoveOffsetsAsync(CoordinatorShard shard, Func<string, bool> gone)
    {
        var removed = new List<(string Group, string Topic, int Partition)>();
        foreach (var (groupId, offsets) in shard.Offsets)
        {
            removed.AddRange(offsets.Keys.Where(k => gone(k.Topic)).Select(k => (groupId, k.Topic, k.Partition)));
        }

        if (removed.Count == 0)
        {
            return;
        }

        await WriteAsync(shard, [.. removed.Select(r => (GroupRecords.OffsetKey(r.Group, r.Topic, r.Partition), (byte[]?)null))]).ConfigureAwait(false);
        foreach (var (group, topic, partition) in removed)
        {
            shard.Offsets[group].Remove((topic, partition));
        }

        LogOffsetsOfDeletedTopicsRemoved(_logger, removed.Count, shard.Partition);
    }

    /// <summary>
    /// Removes the offsets of groups that have been empty for offsets.retention.minutes (and such groups
    /// themselves once they hold nothing).
    /// </summary>
    private async Task ExpireOffsetsAsync(CoordinatorShard shard)
    {
        var now = NowMs;
        var records = new List<(byte[], byte[]?)>();
        var expired = shard.Groups.Values.Where(g => g.State == GroupState.Empty && now - g.StateTimestamp >= Options.OffsetsRetentionMs).ToList();
        foreach (var group in expired)
        {
            foreach (var (topic, partition) in shard.Offsets.GetValueOrDefault(group.GroupId)?.Keys ?? Enumerable.Empty<(string, int)>())
            {
                records.Add((GroupRecords.OffsetKey(group.GroupId, topic, partition), null));
            }

            records.Add((GroupRecords.GroupKey(group.GroupId), null));
        }

        var expiredConsumerGroups = shard.ConsumerGroups.Values.Where(g => g.Members.Count == 0 && now - g.EmptySinceMs >= Options.OffsetsRetentionMs).ToList();
        foreach (var group in expiredConsumerGroups)
        {
            foreach (var (topic, partition) in shard.Offsets.GetValueOrDefault(group.GroupId)?.Keys ?? Enumerable.Empty<(string, int)>())
            {
                records.Add((GroupRecords.OffsetKey(group.GroupId, topic, partition), null));
            }

            records.Add((GroupRecords.TargetEpochKey(group.GroupId), null));
            records.Add((GroupRecords.ConsumerGroupKey(group.GroupId), null));
        }

        await WriteAsync(shard, records).ConfigureAwait(false);
        foreach (var group in expired)
        {
            shard.Offsets.Remove(group.GroupId);
            shard.Groups.Remove(group.GroupId);
        }

        foreach (var group in expiredConsumerGroups)
        {
            group.Deleted = true;
            shard.Offsets.Remove(group.GroupId);
            shard.ConsumerGroups.Remove(group.GroupId);
        }
    }
}
