using System.Text.RegularExpressions;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Groups;

/// <summary>
/// The consumer group protocol (KIP-848): ConsumerGroupHeartbeat drives everything. Membership, subscription and
/// subscribed-topic changes bump the group epoch; a new target assignment is then computed by the group's
/// server assignor; each member moves towards its target at its own heartbeats, revoking before anyone else is
/// given what it held. Every change is written to __consumer_offsets (and fsynced) before it is answered.
/// </summary>
public sealed partial class GroupCoordinator
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(100);

    public async Task<ConsumerGroupHeartbeatResponse> ConsumerHeartbeatAsync(
        ConsumerGroupHeartbeatRequest request, short version, string clientId, string clientHost, CancellationToken cancellationToken)
    {
        var response = new ConsumerGroupHeartbeatResponse { MemberId = request.MemberId, MemberEpoch = request.MemberEpoch };
        ConsumerGroupHeartbeatResponse Fail(ErrorCode error, string message)
        {
            response.ErrorCode = (short)error;
            response.ErrorMessage = message;
            response.MemberEpoch = 0;
            return response;
        }

        if (Validate(request, version) is { } invalid)
        {
            return Fail(invalid.Error, invalid.Message);
        }

        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return Fail(error, $"The coordinator of group {request.GroupId} is not available.");
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var records = new List<(byte[] Key, byte[]? Value)>();
            var group = shard.ConsumerGroups.GetValueOrDefault(request.GroupId);
            if (group is null)
            {
                if (shard.Groups.TryGetValue(request.GroupId, out var classic) && classic.State != GroupState.Dead)
                {
                    if (classic.Members.Count > 0 || request.MemberEpoch != 0)
                    {
                        return Fail(ErrorCode.GroupIdNotFound, $"Group {request.GroupId} is not a consumer group: it is a classic group with members.");
                    }

                    // An empty classic group is taken over by the consumer protocol; its offsets stay.
                    shard.Groups.Remove(request.GroupId);
                    classic.TransitionTo(GroupState.Dead, NowMs);
                    records.Add((GroupRecords.GroupKey(request.GroupId), null));
                }
                else if (request.MemberEpoch != 0)
                {
                    return Fail(request.MemberEpoch > 0 ? ErrorCode.UnknownMemberId : ErrorCode.GroupIdNotFound, $"Group {request.GroupId} not found.");
                }

                group = new ConsumerGroup(request.GroupId, NowMs);
                shard.ConsumerGroups[request.GroupId] = group;
            }

            var result = Heartbeat(shard, group, request, clientId, clientHost, records, out var member, out var full);
            if (result is { } failed)
            {
                DropIfUnused(shard, group);
                return Fail(failed.Error, failed.Message);
            }

            try
            {
                await WriteAsync(shard, records).ConfigureAwait(false);
            }
            catch (Storage.KafkaStorageException e)
            {
                return Fail(ErrorCode.CoordinatorNotAvailable, e.Message);
            }

            response.MemberId = member!.MemberId;
            response.MemberEpoch = member.MemberEpoch;
            if (member.MemberEpoch >= 0)
            {
                response.HeartbeatIntervalMs = Options.ConsumerHeartbeatIntervalMs;
                if (full)
                {
                    response.Assignment = new ConsumerGroupHeartbeatResponse.AssignmentData { TopicPartitions = ToWire(member.Assigned) };
                }
            }

            return response;
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    private (ErrorCode Error, string Message)? Validate(ConsumerGroupHeartbeatRequest request, short version)
    {
        (ErrorCode, string) Invalid(string message) => (ErrorCode.InvalidRequest, message);
        if (string.IsNullOrEmpty(request.GroupId))
        {
            return Invalid("GroupId can't be empty.");
        }

        if (request.InstanceId is "")
        {
            return Invalid("InstanceId can't be empty.");
        }

        if (request.RackId is "")
        {
            return Invalid("RackId can't be empty.");
        }

        if ((version >= 1 || request.MemberEpoch != 0) && string.IsNullOrEmpty(request.MemberId))
        {
            return Invalid("MemberId can't be empty.");
        }

        switch (request.MemberEpoch)
        {
            case 0:
                if (request.RebalanceTimeoutMs == -1)
                {
                    return Invalid("RebalanceTimeoutMs must be provided in first request.");
                }

                if (request.TopicPartitions is not { Count: 0 })
                {
                    return Invalid("TopicPartitions must be empty when (re-)joining.");
                }

                if (request.SubscribedTopicNames is null && request.SubscribedTopicRegex is null)
                {
                    return Invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
                }

                break;
            case ConsumerGroup.StaticLeaveEpoch when request.InstanceId is null:
                return Invalid("InstanceId can't be null.");
            case < ConsumerGroup.StaticLeaveEpoch:
                return Invalid($"MemberEpoch {request.MemberEpoch} is invalid.");
        }

        if (request.ServerAssignor is { } assignor && !Options.ConsumerAssignors.Contains(assignor))
        {
            return (ErrorCode.UnsupportedAssignor, $"ServerAssignor {assignor} is not supported. Supported assignors: {string.Join(", ", Options.ConsumerAssignors)}.");
        }

        if (request.SubscribedTopicRegex is { } regex && TopicRegex(regex) is null)
        {
            return (ErrorCode.InvalidRegularExpression, $"SubscribedTopicRegex {regex} is not a valid regular expression.");
        }

        return null;
    }

    /// <summary>Applies one heartbeat to the group; the records to write go to <paramref name="records"/>.</summary>
    private (ErrorCode Error, string Message)? Heartbeat(
        CoordinatorShard shard,
        ConsumerGroup group,
        ConsumerGroupHeartbeatRequest request,
        string clientId,
        string clientHost,
        List<(byte[] Key, byte[]? Value)> records,
        out ConsumerMember? member,
        out bool full)
    {
        full = false;
        var memberId = string.IsNullOrEmpty(request.MemberId) ? Guid.NewGuid().ToString() : request.MemberId;
        group.Members.TryGetValue(memberId, out member);
        var bump = false;
        var owned = request.TopicPartitions?.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))).ToHashSet();
        switch (request.MemberEpoch)
        {
            case ConsumerGroup.LeaveEpoch or ConsumerGroup.StaticLeaveEpoch:
                if (member is null)
                {
                    return (ErrorCode.UnknownMemberId, $"Member {memberId} is not a member of group {group.GroupId}.");
                }

                if (request.MemberEpoch == ConsumerGroup.LeaveEpoch || member.InstanceId is null)
                {
                    RemoveConsumerMember(group, member, records);
                    member = new ConsumerMember(memberId) { MemberEpoch = ConsumerGroup.LeaveEpoch };
                }
                else
                {
                    // A static member away: its partitions wait for it until its session ends.
                    member.PreviousMemberEpoch = member.MemberEpoch;
                    member.MemberEpoch = ConsumerGroup.StaticLeaveEpoch;
                    records.Add(CurrentAssignmentRecord(group, member));
                    ScheduleConsumerSession(shard, group, member);
                }

                return null;
            case 0:
                full = true;
                if (request.InstanceId is { } instance && group.StaticMember(instance) is { } previous && previous.MemberId != memberId)
                {
                    if (!previous.IsAway)
                    {
                        member = null;
                        return (ErrorCode.UnreleasedInstanceId, $"Static member {previous.MemberId} with instance id {instance} is still active in group {group.GroupId}.");
                    }

                    // The static member is back under a new member id: it takes over what it held.
                    member = new ConsumerMember(memberId)
                    {
                        InstanceId = instance,
                        MemberEpoch = previous.PreviousMemberEpoch,
                        PreviousMemberEpoch = previous.PreviousMemberEpoch,
                        State = previous.State,
                        Assigned = previous.Assigned,
                        PendingRevocation = previous.PendingRevocation,
                        SubscribedTopicNames = previous.SubscribedTopicNames,
                        SubscribedTopicRegex = previous.SubscribedTopicRegex,
                        ServerAssignor = previous.ServerAssignor,
                        RackId = previous.RackId,
                        RebalanceTimeoutMs = previous.RebalanceTimeoutMs,
                    };
                    var target = group.TargetOf(previous.MemberId);
                    RemoveConsumerMember(group, previous, records, bumpEpoch: false);
                    group.Members[memberId] = member;
                    group.Target[memberId] = target;
                    records.Add(TargetMemberRecord(group, memberId));
                    records.Add(MemberRecord(group, member));
                }
                else if (member is not null)
                {
                    // A member that lost its place (fenced) joins again: it starts from nothing.
                    member.Assigned = [];
                    member.PendingRevocation = [];
                    member.State = ConsumerMemberState.Stable;
                    member.PreviousMemberEpoch = member.MemberEpoch;
                    member.MemberEpoch = 0;
                }
                else
                {
                    if (group.Members.Count >= Math.Min(Options.ConsumerMaxSize, Options.MaxGroupSize))
                    {
                        return (ErrorCode.GroupMaxSizeReached, $"Group {group.GroupId} has reached its maximum size.");
                    }

                    member = new ConsumerMember(memberId) { InstanceId = request.InstanceId };
                    group.Members[memberId] = member;
                    bump = true;
                }

                break;
            default:
                if (member is null)
                {
                    return (ErrorCode.UnknownMemberId, $"Member {memberId} is not a member of group {group.GroupId}.");
                }

                if (request.MemberEpoch != member.MemberEpoch)
                {
                    // A lost response: the member still speaks at its previous epoch and owns nothing it should not.
                    var lostResponse = request.MemberEpoch == member.PreviousMemberEpoch && owned is not null && owned.IsSubsetOf(member.Assigned);
                    if (!lostResponse)
                    {
                        var fenced = member;
                        member = null;
                        return (ErrorCode.FencedMemberEpoch, $"Member {memberId} is at epoch {request.MemberEpoch}; the group has it at {fenced.MemberEpoch}.");
                    }
                }

                full = request.SubscribedTopicNames is not null || request.SubscribedTopicRegex is not null || owned is not null;
                break;
        }

        // The member's subscription and details.
        var changed = bump;
        if (request.SubscribedTopicNames is { } names && !names.Order(StringComparer.Ordinal).SequenceEqual(member.SubscribedTopicNames.Order(StringComparer.Ordinal)))
        {
            member.SubscribedTopicNames = [.. names];
            changed = bump = true;
        }

        if (request.SubscribedTopicRegex is { } regex && regex != (member.SubscribedTopicRegex ?? ""))
        {
            member.SubscribedTopicRegex = regex.Length == 0 ? null : regex;
            changed = bump = true;
        }

        if (request.ServerAssignor is { } assignor && assignor != member.ServerAssignor)
        {
            member.ServerAssignor = assignor;
            changed = bump = true;
        }

        if (request.RebalanceTimeoutMs != -1 && request.RebalanceTimeoutMs != member.RebalanceTimeoutMs)
        {
            member.RebalanceTimeoutMs = request.RebalanceTimeoutMs;
            changed = true;
        }

        if (request.RackId is { } rack && rack != member.RackId)
        {
            member.RackId = rack;
            changed = true;
        }

        if (member.ClientId != clientId || member.ClientHost != clientHost)
        {
            (member.ClientId, member.ClientHost) = (clientId, clientHost);
            changed = true;
        }

        if (changed)
        {
            records.Add(MemberRecord(group, member));
        }

        // The topics the group subscribes to, as they are now: a change (a topic created that a regex matches,
        // partitions added, a topic deleted) is a new group epoch too.
        // Resolved again only when the metadata or a subscription changed, not at every heartbeat.
        var image = _metadata.Image;
        if (bump || !ReferenceEquals(image, group.TopicsResolvedFrom))
        {
            var topics = SubscribedTopicsOf(group, image);
            group.TopicsResolvedFrom = image;
            if (!SameTopics(topics, group.SubscribedTopics))
            {
                group.SubscribedTopics = topics;
                bump = true;
            }
        }

        if (bump)
        {
            BumpEpoch(group, records);
        }

        if (group.GroupEpoch > group.AssignmentEpoch)
        {
            ComputeTarget(group, records);
        }

        var before = (member.MemberEpoch, member.State, Assigned: member.Assigned.ToHashSet(), Pending: member.PendingRevocation.ToHashSet());
        Reconcile(group, member, owned);
        if (before.MemberEpoch != member.MemberEpoch || before.State != member.State
            || !before.Assigned.SetEquals(member.Assigned) || !before.Pending.SetEquals(member.PendingRevocation) || request.MemberEpoch == 0)
        {
            records.Add(CurrentAssignmentRecord(group, member));
        }

        full |= !before.Assigned.SetEquals(member.Assigned);
        ScheduleConsumerSession(shard, group, member);
        ScheduleRevocation(shard, group, member);
        return null;
    }

    /// <summary>
    /// Moves a member towards its target: first it must give up what its target no longer has (its epoch waits
    /// until it confirms); then it takes the new epoch and every target partition nobody else holds any more.
    /// </summary>
    private void Reconcile(ConsumerGroup group, ConsumerMember member, HashSet<(Guid TopicId, int Partition)>? owned)
    {
        if (member.State == ConsumerMemberState.UnrevokedPartitions)
        {
            if (owned is null || owned.Overlaps(member.PendingRevocation))
            {
                return; // still revoking
            }

            member.PendingRevocation = [];
            member.RevocationDeadlineMs = 0;
        }
        else if (member.State == ConsumerMemberState.Stable && member.MemberEpoch == group.AssignmentEpoch)
        {
            return;
        }

        var target = group.TargetOf(member.MemberId);
        var revoke = member.Assigned.Where(p => !target.Contains(p)).ToHashSet();
        if (revoke.Count > 0)
        {
            member.Assigned.ExceptWith(revoke);
            member.PendingRevocation = revoke;
            member.State = ConsumerMemberState.UnrevokedPartitions;
            member.RevocationDeadlineMs = NowMs + Math.Max(0, member.RebalanceTimeoutMs);
            return;
        }

        var missing = target.Where(p => !member.Assigned.Contains(p)).ToList();
        var free = missing.Where(p => !group.HeldByOther(p, member.MemberId)).ToList();
        member.Assigned.UnionWith(free);
        if (member.MemberEpoch != group.AssignmentEpoch)
        {
            member.PreviousMemberEpoch = member.MemberEpoch;
            member.MemberEpoch = group.AssignmentEpoch;
        }

        member.State = free.Count < missing.Count ? ConsumerMemberState.UnreleasedPartitions : ConsumerMemberState.Stable;
    }

    /// <summary>A new target for every member, from the group's assignor, at the group epoch.</summary>
    private void ComputeTarget(ConsumerGroup group, List<(byte[] Key, byte[]? Value)> records)
    {
        var image = _metadata.Image;
        var assignor = ServerAssignors.Named(group.AssignorName(Options.ConsumerAssignors.FirstOrDefault() ?? "uniform")) ?? new UniformAssignor();
        var members = group.Members.Values
            .Select(m => new AssignorMember(m.MemberId, SubscribedTopicsOf(m, image), group.TargetOf(m.MemberId)))
            .ToList();
        var targets = assignor.Assign(members, group.SubscribedTopics);
        foreach (var (memberId, target) in targets)
        {
            if (!group.TargetOf(memberId).SetEquals(target) || !group.Target.ContainsKey(memberId))
            {
                group.Target[memberId] = target;
                records.Add(TargetMemberRecord(group, memberId));
            }
        }

        group.AssignmentEpoch = group.GroupEpoch;
        records.Add((GroupRecords.TargetEpochKey(group.GroupId), GroupRecords.TargetEpochValue(group.AssignmentEpoch)));
        LogTargetAssignment(_logger, group.GroupId, group.AssignmentEpoch, group.Members.Count, assignor.Name);
    }

    private static void BumpEpoch(ConsumerGroup group, List<(byte[] Key, byte[]? Value)> records)
    {
        group.GroupEpoch = Math.Max(group.GroupEpoch, group.AssignmentEpoch) + 1;
        records.Add((GroupRecords.ConsumerGroupKey(group.GroupId), GroupRecords.ConsumerGroupValue(group.GroupEpoch)));
    }

    /// <summary>Removes a member (it left, or was fenced): what it held is free at once.</summary>
    private void RemoveConsumerMember(ConsumerGroup group, ConsumerMember member, List<(byte[] Key, byte[]? Value)> records, bool bumpEpoch = true)
    {
        member.StopTimers();
        group.Members.Remove(member.MemberId);
        group.Target.Remove(member.MemberId);
        records.Add((GroupRecords.CurrentAssignmentKey(group.GroupId, member.MemberId), null));
        records.Add((GroupRecords.TargetMemberKey(group.GroupId, member.MemberId), null));
        records.Add((GroupRecords.ConsumerMemberKey(group.GroupId, member.MemberId), null));
        if (bumpEpoch)
        {
            Resolve(group);
            BumpEpoch(group, records);
        }

        if (group.Members.Count == 0)
        {
            group.EmptySinceMs = NowMs;
        }
    }

    /// <summary>A consumer group created by a heartbeat that then failed is not kept.</summary>
    private static void DropIfUnused(CoordinatorShard shard, ConsumerGroup group)
    {
        if (group.Members.Count == 0 && group.GroupEpoch == 0)
        {
            shard.ConsumerGroups.Remove(group.GroupId);
        }
    }

    private void ScheduleConsumerSession(CoordinatorShard shard, ConsumerGroup group, ConsumerMember member)
    {
        member.SessionTimer?.Dispose();
        member.SessionDeadlineMs = NowMs + Options.ConsumerSessionTimeoutMs;
        var epoch = ++member.SessionEpoch;
        member.SessionTimer = Schedule(shard, Options.ConsumerSessionTimeoutMs, () => OnConsumerDeadlineAsync(shard, group, member, epoch));
    }

    private void ScheduleRevocation(CoordinatorShard shard, ConsumerGroup group, ConsumerMember member)
    {
        member.RevocationTimer?.Dispose();
        member.RevocationTimer = null;
        if (member.State == ConsumerMemberState.UnrevokedPartitions && member.RevocationDeadlineMs > 0)
        {
            var epoch = member.SessionEpoch;
            member.RevocationTimer = Schedule(shard, (int)Math.Max(0, member.RevocationDeadlineMs - NowMs), () => OnConsumerDeadlineAsync(shard, group, member, epoch));
        }
    }

    /// <summary>A member silent past its session, or still holding revoked partitions past its rebalance timeout, is fenced.</summary>
    private async Task OnConsumerDeadlineAsync(CoordinatorShard shard, ConsumerGroup group, ConsumerMember member, int epoch)
    {
        if (!group.Members.TryGetValue(member.MemberId, out var current) || current != member || group.Deleted)
        {
            return;
        }

        var now = NowMs;
        var sessionOver = epoch == member.SessionEpoch && now >= member.SessionDeadlineMs;
        var revocationOver = member.State == ConsumerMemberState.UnrevokedPartitions && member.RevocationDeadlineMs > 0 && now >= member.RevocationDeadlineMs;
        if (!sessionOver && !revocationOver)
        {
            if (epoch == member.SessionEpoch && now < member.SessionDeadlineMs && member.SessionTimer is not null)
            {
                // Timers may fire a little early: wait out the rest.
                member.SessionTimer.Dispose();
                member.SessionTimer = Schedule(shard, (int)(member.SessionDeadlineMs - now), () => OnConsumerDeadlineAsync(shard, group, member, epoch));
            }

            return;
        }

        var records = new List<(byte[] Key, byte[]? Value)>();
        RemoveConsumerMember(group, member, records);
        await WriteAsync(shard, records).ConfigureAwait(false);
    }

    /// <summary>The topics (existing, not internal) a member subscribes to: its names and its regex's matches.</summary>
    private static HashSet<string> SubscribedTopicsOf(ConsumerMember member, ClusterImage image)
    {
        var topics = member.SubscribedTopicNames.Where(t => image.Topic(t) is not null).ToHashSet(StringComparer.Ordinal);
        if (member.SubscribedTopicRegex is { } pattern && TopicRegex(pattern) is { } regex)
        {
            foreach (var name in image.Topics.Keys.Where(t => !TopicNames.IsInternal(t)))
            {
                try
                {
                    if (regex.IsMatch(name))
                    {
                        topics.Add(name);
                    }
                }
                catch (RegexMatchTimeoutException)
                {
                    // A pathological pattern matches nothing rather than stalling the coordinator.
                }
            }
        }

        return topics;
    }

    /// <summary>Resolves the group's subscribed topics against the current metadata.</summary>
    private void Resolve(ConsumerGroup group)
    {
        group.TopicsResolvedFrom = _metadata.Image;
        group.SubscribedTopics = SubscribedTopicsOf(group, group.TopicsResolvedFrom);
    }

    private static Dictionary<string, (Guid Id, int Partitions)> SubscribedTopicsOf(ConsumerGroup group, ClusterImage image) =>
        group.Members.Values.SelectMany(m => SubscribedTopicsOf(m, image)).Distinct()
            .Select(image.Topic).OfType<TopicImage>()
            .ToDictionary(t => t.Name, t => (t.TopicId, t.Partitions.Count), StringComparer.Ordinal);

    private static bool SameTopics(Dictionary<string, (Guid Id, int Partitions)> a, Dictionary<string, (Guid Id, int Partitions)> b) =>
        a.Count == b.Count && a.All(t => b.TryGetValue(t.Key, out var other) && other == t.Value);

    /// <summary>A subscription regex, matched against whole topic names; null when it does not parse.</summary>
    private static Regex? TopicRegex(string pattern)
    {
        try
        {
            return new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, RegexTimeout);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Replays a consumer group record read from __consumer_offsets.</summary>
    private void ApplyConsumerGroupRecord(CoordinatorShard shard, GroupRecords.Parsed? parsed)
    {
        ConsumerGroup Group(string id)
        {
            if (!shard.ConsumerGroups.TryGetValue(id, out var group))
            {
                group = new ConsumerGroup(id, NowMs);
                shard.ConsumerGroups[id] = group;
            }

            return group;
        }

        ConsumerMember Member(string groupId, string memberId)
        {
            var group = Group(groupId);
            if (!group.Members.TryGetValue(memberId, out var member))
            {
                member = new ConsumerMember(memberId);
                group.Members[memberId] = member;
            }

            return member;
        }

        switch (parsed)
        {
            case GroupRecords.ConsumerGroupEpoch { Epoch: null } g:
                shard.ConsumerGroups.Remove(g.GroupId);
                break;
            case GroupRecords.ConsumerGroupEpoch g:
                Group(g.GroupId).GroupEpoch = g.Epoch.Value;
                break;
            case GroupRecords.TargetEpoch { Epoch: { } epoch } t:
                Group(t.GroupId).AssignmentEpoch = epoch;
                break;
            case GroupRecords.ConsumerMemberMetadata { Value: null } m:
                if (shard.ConsumerGroups.TryGetValue(m.GroupId, out var left))
                {
                    left.Members.Remove(m.MemberId);
                    left.EmptySinceMs = left.Members.Count == 0 ? NowMs : left.EmptySinceMs;
                }

                break;
            case GroupRecords.ConsumerMemberMetadata { Value: { } v } m:
                var member = Member(m.GroupId, m.MemberId);
                member.InstanceId = v.InstanceId;
                member.RackId = v.RackId;
                member.ClientId = v.ClientId;
                member.ClientHost = v.ClientHost;
                member.SubscribedTopicNames = [.. v.SubscribedTopicNames];
                member.SubscribedTopicRegex = v.SubscribedTopicRegex;
                member.RebalanceTimeoutMs = v.RebalanceTimeoutMs;
                member.ServerAssignor = v.ServerAssignor;
                break;
            case GroupRecords.TargetMember { Partitions: null } t:
                if (shard.ConsumerGroups.TryGetValue(t.GroupId, out var targeted))
                {
                    targeted.Target.Remove(t.MemberId);
                }

                break;
            case GroupRecords.TargetMember t:
                Group(t.GroupId).Target[t.MemberId] = t.Partitions;
                break;
            case GroupRecords.CurrentAssignment { Value: { } v } c when shard.ConsumerGroups.TryGetValue(c.GroupId, out var group) && group.Members.TryGetValue(c.MemberId, out var current):
                current.MemberEpoch = v.MemberEpoch;
                current.PreviousMemberEpoch = v.PreviousMemberEpoch;
                current.State = Enum.IsDefined((ConsumerMemberState)v.State) ? (ConsumerMemberState)v.State : ConsumerMemberState.Stable;
                current.Assigned = v.AssignedPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))).ToHashSet();
                current.PendingRevocation = v.PartitionsPendingRevocation.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))).ToHashSet();
                current.RevocationDeadlineMs = current.State == ConsumerMemberState.UnrevokedPartitions ? NowMs + Math.Max(0, current.RebalanceTimeoutMs) : 0;
                break;
        }
    }

    internal static List<ConsumerGroupHeartbeatResponse.TopicPartitions> ToWire(IEnumerable<(Guid TopicId, int Partition)> partitions) =>
        GroupRecords.Grouped(partitions).Select(t => new ConsumerGroupHeartbeatResponse.TopicPartitions { TopicId = t.TopicId, Partitions = t.Partitions }).ToList();

    private static (byte[], byte[]?) MemberRecord(ConsumerGroup group, ConsumerMember member) =>
        (GroupRecords.ConsumerMemberKey(group.GroupId, member.MemberId), GroupRecords.ConsumerMemberValue(member));

    private static (byte[], byte[]?) TargetMemberRecord(ConsumerGroup group, string memberId) =>
        (GroupRecords.TargetMemberKey(group.GroupId, memberId), GroupRecords.TargetMemberValue(group.TargetOf(memberId)));

    private static (byte[], byte[]?) CurrentAssignmentRecord(ConsumerGroup group, ConsumerMember member) =>
        (GroupRecords.CurrentAssignmentKey(group.GroupId, member.MemberId), GroupRecords.CurrentAssignmentValue(member));
}
