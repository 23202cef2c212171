using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Groups;

/// <summary>The classic group protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, and the rebalance they drive.</summary>
public sealed partial class GroupCoordinator
{
    private static JoinGroupResponse JoinError(ErrorCode error, string memberId = "") =>
        new() { ErrorCode = (short)error, GenerationId = -1, ProtocolName = null, Leader = "", MemberId = memberId };

    public async Task<JoinGroupResponse> JoinGroupAsync(JoinGroupRequest request, short version, string clientId, string clientHost, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return JoinError(error, request.MemberId);
        }

        if (request.SessionTimeoutMs < Options.MinSessionTimeoutMs || request.SessionTimeoutMs > Options.MaxSessionTimeoutMs)
        {
            return JoinError(ErrorCode.InvalidSessionTimeout, request.MemberId);
        }

        if (request.ProtocolType.Length == 0 || request.Protocols.Count == 0)
        {
            return JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId);
        }

        Task<JoinGroupResponse> waiting;
        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = NowMs;
            if (shard.ConsumerGroups.TryGetValue(request.GroupId, out var consumerGroup))
            {
                if (consumerGroup.Members.Count > 0)
                {
                    return JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId);
                }

                // An empty consumer-protocol group is taken over by the classic protocol; its offsets stay.
                await WriteAsync(shard, [(GroupRecords.TargetEpochKey(request.GroupId), null), (GroupRecords.ConsumerGroupKey(request.GroupId), null)]).ConfigureAwait(false);
                consumerGroup.Deleted = true;
                shard.ConsumerGroups.Remove(request.GroupId);
            }

            if (!shard.Groups.TryGetValue(request.GroupId, out var group))
            {
                if (request.MemberId.Length > 0)
                {
                    return JoinError(ErrorCode.UnknownMemberId, request.MemberId);
                }

                group = new ClassicGroup(request.GroupId, now);
                shard.Groups[request.GroupId] = group;
            }

            if (group.State == GroupState.Dead)
            {
                return JoinError(ErrorCode.CoordinatorNotAvailable, request.MemberId);
            }

            if (!group.Supports(request.ProtocolType, request.Protocols.Select(p => p.Name)))
            {
                return JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId);
            }

            ClassicMember? member;
            var instanceId = request.GroupInstanceId;
            if (request.MemberId.Length == 0)
            {
                var newId = $"{clientId}-{Guid.NewGuid()}";
                if (instanceId is not null && group.StaticMembers.TryGetValue(instanceId, out var oldId) && group.Members.TryGetValue(oldId, out var old))
                {
                    // A static member came back with a new member id: it takes the old one's place; the old id is fenced.
                    var (immediate, pending) = await ReplaceStaticMemberAsync(shard, group, old, newId, request, version, clientId, clientHost).ConfigureAwait(false);
                    if (immediate is not null)
                    {
                        return immediate;
                    }

                    waiting = pending!;
                    goto Wait;
                }

                if (instanceId is null && version >= 4)
                {
                    group.PendingMembers.Add(newId);
                    _ = Schedule(shard, request.SessionTimeoutMs, () =>
                    {
                        if (group.PendingMembers.Remove(newId) && group.State == GroupState.PreparingRebalance)
                        {
                            return TryCompleteJoinAsync(shard, group, force: false);
                        }

                        return Task.CompletedTask;
                    });
                    return JoinError(ErrorCode.MemberIdRequired, newId);
                }

                member = new ClassicMember(newId) { GroupInstanceId = instanceId };
                if (instanceId is not null)
                {
                    group.StaticMembers[instanceId] = newId;
                }
            }
            else if (group.PendingMembers.Remove(request.MemberId))
            {
                member = new ClassicMember(request.MemberId) { GroupInstanceId = instanceId };
            }
            else if (!group.Members.TryGetValue(request.MemberId, out member))
            {
                return JoinError(instanceId is not null && group.StaticMembers.ContainsKey(instanceId) ? ErrorCode.FencedInstanceId : ErrorCode.UnknownMemberId, request.MemberId);
            }
            else if (member.GroupInstanceId != instanceId)
            {
                return JoinError(ErrorCode.FencedInstanceId, request.MemberId);
            }

            var isNew = !group.Members.ContainsKey(member.MemberId);
            if (isNew && group.Members.Count >= Options.MaxGroupSize)
            {
                return JoinError(ErrorCode.GroupMaxSizeReached, member.MemberId);
            }

            var protocols = request.Protocols.Select(p => (p.Name, p.Metadata)).ToList();
            var changed = isNew || member.ProtocolType != request.ProtocolType || !member.Protocols.Select(p => p.Name).SequenceEqual(protocols.Select(p => p.Name))
                || !member.Protocols.Zip(protocols).All(p => p.First.Metadata.AsSpan().SequenceEqual(p.Second.Metadata));
            member.ClientId = clientId;
            member.ClientHost = clientHost;
            member.SessionTimeoutMs = request.SessionTimeoutMs;
            member.RebalanceTimeoutMs = version >= 1 && request.RebalanceTimeoutMs > 0 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs;
            member.ProtocolType = request.ProtocolType;
            member.Protocols = protocols;
            member.JoinVersion = version;
            group.ProtocolType ??= request.ProtocolType;
            if (isNew)
            {
                group.Members[member.MemberId] = member;
            }

            member.PendingJoin?.TrySetResult(JoinError(ErrorCode.RebalanceInProgress, member.MemberId));
            if (group.State == GroupState.Stable && !changed && member.MemberId != group.LeaderId)
            {
                // Nothing changed for a follower: it gets the current generation again, without a rebalance.
                ScheduleSession(shard, group, member);
                return JoinResponse(group, member);
            }

            member.PendingJoin = new TaskCompletionSource<JoinGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiting = member.PendingJoin.Task;
            if (group.State != GroupState.PreparingRebalance)
            {
                PrepareRebalance(shard, group);
            }

            await TryCompleteJoinAsync(shard, group, force: false).ConfigureAwait(false);
        }
        finally
        {
            shard.Lock.Release();
        }

    Wait:
        return await waiting.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<(JoinGroupResponse? Immediate, Task<JoinGroupResponse>? Waiting)> ReplaceStaticMemberAsync(
        CoordinatorShard shard, ClassicGroup group, ClassicMember old, string newId, JoinGroupRequest request, short version, string clientId, string clientHost)
    {
        old.SessionTimer?.Dispose();
        old.PendingJoin?.TrySetResult(JoinError(ErrorCode.FencedInstanceId, old.MemberId));
        old.PendingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.FencedInstanceId, Assignment = [] });
        var wasLeader = group.LeaderId == old.MemberId;
        var protocolsChanged = old.ProtocolType != request.ProtocolType || !old.Protocols.Select(p => p.Name).SequenceEqual(request.Protocols.Select(p => p.Name));
        group.Members.Remove(old.MemberId);
        var member = new ClassicMember(newId)
        {
            GroupInstanceId = old.GroupInstanceId,
            ClientId = clientId,
            ClientHost = clientHost,
            SessionTimeoutMs = request.SessionTimeoutMs,
            RebalanceTimeoutMs = request.RebalanceTimeoutMs > 0 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs,
            ProtocolType = request.ProtocolType,
            Protocols = [.. request.Protocols.Select(p => (p.Name, p.Metadata))],
            Assignment = old.Assignment,
            JoinVersion = version,
        };
        group.Members[newId] = member;
        group.StaticMembers[old.GroupInstanceId!] = newId;
        if (wasLeader)
        {
            group.LeaderId = newId;
        }

        if (group.State == GroupState.Stable && !protocolsChanged)
        {
            // The static member is back within its session: same partitions, no rebalance. A returning leader gets
            // the members as leaders do, told (v9+, KIP-814) to skip the assignment: its SyncGroup returns what it had.
            await WriteAsync(shard, [(GroupRecords.GroupKey(group.GroupId), GroupRecords.GroupValue(group))]).ConfigureAwait(false);
            ScheduleSession(shard, group, member);
            var response = JoinResponse(group, member);
            response.SkipAssignment = wasLeader && version >= 9;
            return (response, null);
        }

        member.PendingJoin = new TaskCompletionSource<JoinGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiting = member.PendingJoin.Task;
        if (group.State != GroupState.PreparingRebalance)
        {
            PrepareRebalance(shard, group);
        }

        await TryCompleteJoinAsync(shard, group, force: false).ConfigureAwait(false);
        return (null, waiting);
    }

    private static JoinGroupResponse JoinResponse(ClassicGroup group, ClassicMember member) => new()
    {
        GenerationId = group.Generation,
        ProtocolType = group.ProtocolType,
        ProtocolName = group.ProtocolName,
        Leader = group.LeaderId ?? "",
        MemberId = member.MemberId,
        Members = member.MemberId == group.LeaderId
            ? group.Members.Values.Select(m => new JoinGroupResponse.JoinGroupResponseMember { MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, Metadata = m.MetadataFor(group.ProtocolName) }).ToList()
            : [],
    };

    /// <summary>Starts a rebalance: members must rejoin within the rebalance timeout (or the initial delay of an empty group).</summary>
    private void PrepareRebalance(CoordinatorShard shard, ClassicGroup group)
    {
        if (group.State == GroupState.CompletingRebalance)
        {
            foreach (var member in group.Members.Values)
            {
                member.Assignment = [];
                member.PendingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress, Assignment = [] });
                member.PendingSync = null;
            }
        }

        var wasEmpty = group.State == GroupState.Empty;
        if (group.State != GroupState.PreparingRebalance)
        {
            LogRebalancing(_logger, group.GroupId, group.Generation, group.Members.Count);
        }

        group.TransitionTo(GroupState.PreparingRebalance, NowMs);
        group.RebalanceTimer?.Dispose();
        group.InitialDelay = wasEmpty && Options.InitialRebalanceDelayMs > 0;
        var generation = group.Generation;
        group.RebalanceTimer = Schedule(shard, group.InitialDelay ? Options.InitialRebalanceDelayMs : group.MaxRebalanceTimeoutMs, () => OnJoinDeadlineAsync(shard, group, generation));
    }

    private Task OnJoinDeadlineAsync(CoordinatorShard shard, ClassicGroup group, int generation)
    {
        if (group.State != GroupState.PreparingRebalance || group.Generation != generation)
        {
            return Task.CompletedTask;
        }

        if (group.InitialDelay)
        {
            group.InitialDelay = false;
            if (!group.AllMembersJoined)
            {
                group.RebalanceTimer = Schedule(shard, group.MaxRebalanceTimeoutMs, () => OnJoinDeadlineAsync(shard, group, generation));
                return Task.CompletedTask;
            }
        }

        return TryCompleteJoinAsync(shard, group, force: true);
    }

    /// <summary>
    /// Ends the join phase when every member has rejoined (or, forced, at the deadline, without those that did not):
    /// a new generation, the protocol chosen, a leader, and every waiting JoinGroup answered.
    /// </summary>
    private async Task TryCompleteJoinAsync(CoordinatorShard shard, ClassicGroup group, bool force)
    {
        if (group.State != GroupState.PreparingRebalance || (group.InitialDelay && !force) || (!force && !group.AllMembersJoined))
        {
            return;
        }

        foreach (var missing in group.Members.Values.Where(m => m.PendingJoin is null).ToList())
        {
            RemoveMember(group, missing, ErrorCode.UnknownMemberId);
        }

        group.PendingMembers.Clear();
        group.RebalanceTimer?.Dispose();
        group.Generation++;
        if (group.Members.Count == 0)
        {
            group.ProtocolName = null;
            group.LeaderId = null;
            group.TransitionTo(GroupState.Empty, NowMs);
            await WriteAsync(shard, [(GroupRecords.GroupKey(group.GroupId), GroupRecords.GroupValue(group))]).ConfigureAwait(false);
            return;
        }

        group.ProtocolName = group.SelectProtocol();
        if (group.LeaderId is null || !group.Members.ContainsKey(group.LeaderId))
        {
            group.LeaderId = group.Members.Keys.First();
        }

        group.TransitionTo(GroupState.CompletingRebalance, NowMs);
        LogGeneration(_logger, group.GroupId, group.Generation, group.Members.Count, group.ProtocolName ?? "");
        foreach (var member in group.Members.Values)
        {
            member.PendingJoin!.TrySetResult(JoinResponse(group, member));
            member.PendingJoin = null;
            ScheduleSession(shard, group, member);
        }

        var generation = group.Generation;
        group.RebalanceTimer = Schedule(shard, group.MaxRebalanceTimeoutMs, () =>
        {
            if (group.State == GroupState.CompletingRebalance && group.Generation == generation)
            {
                // The leader never sent the assignment: drop who did not sync and start over.
                foreach (var silent in group.Members.Values.Where(m => m.PendingSync is null).ToList())
                {
                    RemoveMember(group, silent, ErrorCode.UnknownMemberId);
                }

                PrepareRebalance(shard, group);
                return TryCompleteJoinAsync(shard, group, force: false);
            }

            return Task.CompletedTask;
        });
    }

    private static void RemoveMember(ClassicGroup group, ClassicMember member, ErrorCode reason)
    {
        member.SessionTimer?.Dispose();
        group.Members.Remove(member.MemberId);
        if (member.GroupInstanceId is { } instance && group.StaticMembers.GetValueOrDefault(instance) == member.MemberId)
        {
            group.StaticMembers.Remove(instance);
        }

        member.PendingJoin?.TrySetResult(JoinError(reason, member.MemberId));
        member.PendingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)reason, Assignment = [] });
        if (group.LeaderId == member.MemberId)
        {
            group.LeaderId = null;
        }
    }

    /// <summary>(Re)starts a member's session timer: if nothing is heard from it in time, it leaves the group.</summary>
    private void ScheduleSession(CoordinatorShard shard, ClassicGroup group, ClassicMember member)
    {
        member.SessionTimer?.Dispose();
        member.SessionDeadlineMs = NowMs + member.SessionTimeoutMs;
        var epoch = ++member.SessionEpoch;
        member.SessionTimer = Schedule(shard, member.SessionTimeoutMs, () => OnSessionExpiredAsync(shard, group, member, epoch));
    }

    private Task OnSessionExpiredAsync(CoordinatorShard shard, ClassicGroup group, ClassicMember member, int epoch)
    {
        if (!group.Members.TryGetValue(member.MemberId, out var current) || current != member || epoch != member.SessionEpoch)
        {
            return Task.CompletedTask; // a timer the member's later activity replaced
        }

        if (NowMs < member.SessionDeadlineMs)
        {
            // Timers may fire a little early: wait out the rest.
            member.SessionTimer?.Dispose();
            member.SessionTimer = Schedule(shard, (int)(member.SessionDeadlineMs - NowMs), () => OnSessionExpiredAsync(shard, group, member, epoch));
            return Task.CompletedTask;
        }

        if (member.PendingJoin is not null || member.PendingSync is not null)
        {
            ScheduleSession(shard, group, member); // waiting on us, not silent
            return Task.CompletedTask;
        }

        RemoveMember(group, member, ErrorCode.UnknownMemberId);
        return MembershipChangedAsync(shard, group);
    }

    /// <summary>After members left: rebalance the rest, or finish a join that was only waiting for them.</summary>
    private Task MembershipChangedAsync(CoordinatorShard shard, ClassicGroup group)
    {
        switch (group.State)
        {
            case GroupState.Stable or GroupState.CompletingRebalance:
                PrepareRebalance(shard, group);
                group.InitialDelay = false;
                return TryCompleteJoinAsync(shard, group, force: false);
            case GroupState.PreparingRebalance:
                return TryCompleteJoinAsync(shard, group, force: false);
            default:
                return Task.CompletedTask;
        }
    }

    /// <summary>The checks every request of a known member goes through, in Kafka's order.</summary>
    private static ErrorCode CheckMember(ClassicGroup? group, string memberId, string? instanceId, int generation, out ClassicMember? member)
    {
        member = null;
        if (group is null || group.State == GroupState.Dead)
        {
            return ErrorCode.UnknownMemberId;
        }

        if (instanceId is not null && group.StaticMembers.TryGetValue(instanceId, out var current) && current != memberId)
        {
            return ErrorCode.FencedInstanceId;
        }

        if (!group.Members.TryGetValue(memberId, out member))
        {
            return ErrorCode.UnknownMemberId;
        }

        return generation != group.Generation ? ErrorCode.IllegalGeneration : ErrorCode.None;
    }

    public async Task<SyncGroupResponse> SyncGroupAsync(SyncGroupRequest request, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return new SyncGroupResponse { ErrorCode = (short)error, Assignment = [] };
        }

        Task<SyncGroupResponse> waiting;
        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            shard.Groups.TryGetValue(request.GroupId, out var group);
            error = CheckMember(group, request.MemberId, request.GroupInstanceId, request.GenerationId, out var member);
            if (error != ErrorCode.None)
            {
                return new SyncGroupResponse { ErrorCode = (short)error, Assignment = [] };
            }

            if ((request.ProtocolType is { } type && type != group!.ProtocolType) || (request.ProtocolName is { } name && name != group!.ProtocolName))
            {
                return new SyncGroupResponse { ErrorCode = (short)ErrorCode.InconsistentGroupProtocol, Assignment = [] };
            }

            switch (group!.State)
            {
                case GroupState.Empty:
                    return new SyncGroupResponse { ErrorCode = (short)ErrorCode.UnknownMemberId, Assignment = [] };
                case GroupState.PreparingRebalance:
                    return new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress, Assignment = [] };
                case GroupState.Stable:
                    ScheduleSession(shard, group, member!);
                    return SyncResponse(group, member!);
            }

            member!.PendingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress, Assignment = [] });
            member.PendingSync = new TaskCompletionSource<SyncGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiting = member.PendingSync.Task;
            ScheduleSession(shard, group, member);
            if (member.MemberId == group.LeaderId)
            {
                var assignments = request.Assignments.GroupBy(a => a.MemberId).ToDictionary(g => g.Key, g => g.Last().Assignment);
                foreach (var m in group.Members.Values)
                {
                    m.Assignment = assignments.GetValueOrDefault(m.MemberId) ?? [];
                }

                try
                {
                    await WriteAsync(shard, [(GroupRecords.GroupKey(group.GroupId), GroupRecords.GroupValue(group))]).ConfigureAwait(false);
                }
                catch (Exception e) when (e is Storage.KafkaStorageException or KafkaProtocolException)
                {
                    foreach (var m in group.Members.Values)
                    {
                        m.Assignment = [];
                        m.PendingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.CoordinatorNotAvailable, Assignment = [] });
                        m.PendingSync = null;
                    }

                    PrepareRebalance(shard, group);
                    return await waiting.ConfigureAwait(false);
                }

                group.RebalanceTimer?.Dispose();
                group.TransitionTo(GroupState.Stable, NowMs);
                foreach (var m in group.Members.Values)
                {
                    m.PendingSync?.TrySetResult(SyncResponse(group, m));
                    m.PendingSync = null;
                }
            }
        }
        finally
        {
            shard.Lock.Release();
        }

        return await waiting.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static SyncGroupResponse SyncResponse(ClassicGroup group, ClassicMember member) =>
        new() { ProtocolType = group.ProtocolType, ProtocolName = group.ProtocolName, Assignment = member.Assignment };

    public async Task<HeartbeatResponse> HeartbeatAsync(HeartbeatRequest request, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return new HeartbeatResponse { ErrorCode = (short)error };
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            shard.Groups.TryGetValue(request.GroupId, out var group);
            error = CheckMember(group, request.MemberId, request.GroupInstanceId, request.GenerationId, out var member);
            if (error == ErrorCode.None)
            {
                ScheduleSession(shard, group!, member!);
                error = group!.State switch
                {
                    GroupState.PreparingRebalance => ErrorCode.RebalanceInProgress,
                    GroupState.Empty => ErrorCode.UnknownMemberId,
                    _ => ErrorCode.None,
                };
            }

            return new HeartbeatResponse { ErrorCode = (short)error };
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    public async Task<LeaveGroupResponse> LeaveGroupAsync(LeaveGroupRequest request, short version, CancellationToken cancellationToken)
    {
        var leaving = version >= 3 ? request.Members.Select(m => (m.MemberId, m.GroupInstanceId)).ToList() : [(request.MemberId, (string?)null)];
        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return new LeaveGroupResponse { ErrorCode = (short)error };
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var response = new LeaveGroupResponse();
            if (!shard.Groups.TryGetValue(request.GroupId, out var group) || group.State == GroupState.Dead)
            {
                response.ErrorCode = (short)ErrorCode.UnknownMemberId;
                return response;
            }

            var anyLeft = false;
            foreach (var (memberId, instanceId) in leaving)
            {
                var id = memberId.Length == 0 && instanceId is not null ? group.StaticMembers.GetValueOrDefault(instanceId) ?? "" : memberId;
                var memberError = ErrorCode.None;
                if (instanceId is not null && group.StaticMembers.TryGetValue(instanceId, out var current) && memberId.Length > 0 && current != memberId)
                {
                    memberError = ErrorCode.FencedInstanceId;
                }
                else if (group.Members.TryGetValue(id, out var member))
                {
                    RemoveMember(group, member, ErrorCode.UnknownMemberId);
                    anyLeft = true;
                }
                else if (!group.PendingMembers.Remove(id))
                {
                    memberError = ErrorCode.UnknownMemberId;
                }

                response.Members.Add(new LeaveGroupResponse.MemberResponse { MemberId = memberId, GroupInstanceId = instanceId, ErrorCode = (short)memberError });
            }

            if (version < 3)
            {
                response.ErrorCode = response.Members[0].ErrorCode;
                response.Members.Clear();
            }

            if (anyLeft)
            {
                await MembershipChangedAsync(shard, group).ConfigureAwait(false);
            }

            return response;
        }
        finally
        {
            shard.Lock.Release();
        }
    }
}
