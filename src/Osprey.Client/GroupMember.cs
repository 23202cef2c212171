using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Client;

/// <summary>
/// Membership of a consumer group with the classic protocol: joins (answering MEMBER_ID_REQUIRED), assigns
/// partitions with the range assignor when it is the leader, syncs, heartbeats in the background, notices
/// rebalances (<see cref="RebalanceNeeded"/>), commits offsets as a member, and leaves.
/// </summary>
public sealed class GroupMember(KafkaClient client, string groupId, IReadOnlyList<string> topics) : IAsyncDisposable
{
    private CancellationTokenSource _heartbeatStop = new();
    private Task _heartbeats = Task.CompletedTask;
    private volatile bool _rebalanceNeeded;

    public string GroupId { get; } = groupId;

    public string MemberId { get; private set; } = "";

    public int Generation { get; private set; } = -1;

    public int SessionTimeoutMs { get; init; } = 45_000;

    public int RebalanceTimeoutMs { get; init; } = 60_000;

    public int HeartbeatIntervalMs { get; init; } = 3_000;

    /// <summary>The partitions this member owns in the current generation.</summary>
    public IReadOnlyList<(string Topic, int Partition)> Assignment { get; private set; } = [];

    /// <summary>Set when a heartbeat says the group is rebalancing (or the member was dropped): join again.</summary>
    public bool RebalanceNeeded => _rebalanceNeeded;

    /// <summary>Joins (or rejoins) the group and returns the partitions assigned to this member.</summary>
    public async Task<IReadOnlyList<(string Topic, int Partition)>> JoinAsync(CancellationToken cancellationToken)
    {
        await StopHeartbeatsAsync().ConfigureAwait(false);
        while (true)
        {
            var join = await client.GroupCallAsync<JoinGroupResponse>(
                GroupId,
                ApiKey.JoinGroup,
                7,
                _ => new JoinGroupRequest
                {
                    GroupId = GroupId,
                    SessionTimeoutMs = SessionTimeoutMs,
                    RebalanceTimeoutMs = RebalanceTimeoutMs,
                    MemberId = MemberId,
                    ProtocolType = ConsumerProtocol.ProtocolType,
                    Protocols = [new() { Name = "range", Metadata = ConsumerProtocol.EncodeSubscription(topics) }],
                },
                r => r.ErrorCode,
                cancellationToken).ConfigureAwait(false);
            switch ((ErrorCode)join.ErrorCode)
            {
                case ErrorCode.MemberIdRequired:
                    MemberId = join.MemberId;
                    continue;
                case ErrorCode.UnknownMemberId or ErrorCode.IllegalGeneration:
                    MemberId = "";
                    continue;
                case ErrorCode.RebalanceInProgress:
                    continue;
            }

            KafkaException.ThrowIfError(join.ErrorCode, $"Joining group '{GroupId}'");
            MemberId = join.MemberId;
            Generation = join.GenerationId;
            var assignments = new List<SyncGroupRequest.SyncGroupRequestAssignment>();
            if (join.Leader == join.MemberId)
            {
                var subscriptions = join.Members.ToDictionary(m => m.MemberId, m => ConsumerProtocol.DecodeSubscription(m.Metadata));
                var counts = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var topic in subscriptions.Values.SelectMany(t => t).Distinct(StringComparer.Ordinal))
                {
                    counts[topic] = (await client.TopicAsync(topic, cancellationToken).ConfigureAwait(false)).Partitions.Count;
                }

                assignments.AddRange(ConsumerProtocol.AssignRange(subscriptions, counts)
                    .Select(a => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = a.Key, Assignment = ConsumerProtocol.EncodeAssignment(a.Value) }));
            }

            var sync = await client.GroupCallAsync<SyncGroupResponse>(
                GroupId,
                ApiKey.SyncGroup,
                5,
                _ => new SyncGroupRequest { GroupId = GroupId, GenerationId = Generation, MemberId = MemberId, ProtocolType = ConsumerProtocol.ProtocolType, ProtocolName = "range", Assignments = assignments },
                r => r.ErrorCode,
                cancellationToken).ConfigureAwait(false);
            if (sync.ErrorCode is (short)ErrorCode.RebalanceInProgress or (short)ErrorCode.IllegalGeneration or (short)ErrorCode.UnknownMemberId)
            {
                continue;
            }

            KafkaException.ThrowIfError(sync.ErrorCode, $"Syncing with group '{GroupId}'");
            Assignment = ConsumerProtocol.DecodeAssignment(sync.Assignment);
            _rebalanceNeeded = false;
            _heartbeatStop = new CancellationTokenSource();
            _heartbeats = HeartbeatLoopAsync(_heartbeatStop.Token);
            return Assignment;
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested && !_rebalanceNeeded)
            {
                await Task.Delay(HeartbeatIntervalMs, cancellationToken).ConfigureAwait(false);
                var response = await client.GroupCallAsync<HeartbeatResponse>(
                    GroupId, ApiKey.Heartbeat, 4, _ => new HeartbeatRequest { GroupId = GroupId, GenerationId = Generation, MemberId = MemberId }, r => r.ErrorCode, cancellationToken).ConfigureAwait(false);
                if (response.ErrorCode != 0)
                {
                    _rebalanceNeeded = true;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or KafkaException)
        {
            _rebalanceNeeded = !cancellationToken.IsCancellationRequested;
        }
    }

    /// <summary>Commits positions as this member of the current generation.</summary>
    public Task CommitAsync(IReadOnlyDictionary<(string Topic, int Partition), long> offsets, CancellationToken cancellationToken) =>
        offsets.Count == 0 ? Task.CompletedTask : client.CommitOffsetsAsync(GroupId, offsets, cancellationToken, Generation, MemberId);

    private async Task StopHeartbeatsAsync()
    {
        await _heartbeatStop.CancelAsync().ConfigureAwait(false);
        await _heartbeats.ConfigureAwait(false);
    }

    /// <summary>Leaves the group so that its partitions move at once.</summary>
    public async Task LeaveAsync(CancellationToken cancellationToken)
    {
        await StopHeartbeatsAsync().ConfigureAwait(false);
        if (MemberId.Length > 0)
        {
            await client.GroupCallAsync<LeaveGroupResponse>(
                GroupId, ApiKey.LeaveGroup, 2, _ => new LeaveGroupRequest { GroupId = GroupId, MemberId = MemberId }, r => r.ErrorCode, cancellationToken).ConfigureAwait(false);
            MemberId = "";
        }
    }

    public async ValueTask DisposeAsync() => await StopHeartbeatsAsync().ConfigureAwait(false);
}
