namespace Osprey.Broker.Groups;

/// <summary>Where a consumer-protocol member is in reconciling its assignment with its target (record values as Kafka's).</summary>
public enum ConsumerMemberState : sbyte
{
    /// <summary>It owns what it was asked to own at its epoch.</summary>
    Stable = 0,

    /// <summary>It was asked to give up partitions and has not confirmed it did; its epoch waits.</summary>
    UnrevokedPartitions = 1,

    /// <summary>Its epoch moved on, but partitions of its target are still held by others.</summary>
    UnreleasedPartitions = 2,
}

/// <summary>A member of a consumer-protocol group (KIP-848): what it subscribes to, and what it owns at which epoch.</summary>
public sealed class ConsumerMember(string memberId)
{
    public string MemberId { get; } = memberId;

    public string? InstanceId { get; set; }

    public string? RackId { get; set; }

    public string ClientId { get; set; } = "";

    public string ClientHost { get; set; } = "";

    public int RebalanceTimeoutMs { get; set; } = -1;

    public List<string> SubscribedTopicNames { get; set; } = [];

    public string? SubscribedTopicRegex { get; set; }

    public string? ServerAssignor { get; set; }

    /// <summary>The member's epoch; -2 while a static member is away (it left with epoch -2).</summary>
    public int MemberEpoch { get; set; }

    public int PreviousMemberEpoch { get; set; }

    public ConsumerMemberState State { get; set; }

    /// <summary>The partitions it may use now.</summary>
    public HashSet<(Guid TopicId, int Partition)> Assigned { get; set; } = [];

    /// <summary>The partitions it was asked to give up and still holds.</summary>
    public HashSet<(Guid TopicId, int Partition)> PendingRevocation { get; set; } = [];

    /// <summary>When the member's session ends unless it is heard from (ms); a late timer callback checks it.</summary>
    public long SessionDeadlineMs { get; set; }

    public ITimer? SessionTimer { get; set; }

    /// <summary>Counts session timer restarts, so a superseded timer that still fires does nothing.</summary>
    public int SessionEpoch { get; set; }

    /// <summary>The revocation deadline while <see cref="ConsumerMemberState.UnrevokedPartitions"/> (ms), else 0.</summary>
    public long RevocationDeadlineMs { get; set; }

    public ITimer? RevocationTimer { get; set; }

    public bool IsAway => MemberEpoch == ConsumerGroup.StaticLeaveEpoch;

    public bool Owns((Guid TopicId, int Partition) partition) => Assigned.Contains(partition) || PendingRevocation.Contains(partition);

    public void StopTimers()
    {
        SessionTimer?.Dispose();
        SessionTimer = null;
        RevocationTimer?.Dispose();
        RevocationTimer = null;
    }
}

/// <summary>
/// A consumer-protocol group (KIP-848). The coordinator owns the assignment: every change of membership,
/// subscription or subscribed topics' partitions bumps the group epoch; a new target assignment is computed for
/// that epoch; each member then moves towards its target one heartbeat at a time, giving up partitions before
/// others receive them. Changed only under its shard's lock.
/// </summary>
public sealed class ConsumerGroup(string groupId, long nowMs)
{
    public const int LeaveEpoch = -1;
    public const int StaticLeaveEpoch = -2;

    public string GroupId { get; } = groupId;

    public int GroupEpoch { get; set; }

    public int AssignmentEpoch { get; set; }

    public OrderedDictionary<string, ConsumerMember> Members { get; } = [];

    /// <summary>Each member's target assignment at <see cref="AssignmentEpoch"/>.</summary>
    public Dictionary<string, HashSet<(Guid TopicId, int Partition)>> Target { get; } = [];

    /// <summary>The subscribed topics (by name, with id and partition count) the target was computed from.</summary>
    public Dictionary<string, (Guid Id, int Partitions)> SubscribedTopics { get; set; } = [];

    /// <summary>The metadata image <see cref="SubscribedTopics"/> was resolved against.</summary>
    public Osprey.Metadata.ClusterImage? TopicsResolvedFrom { get; set; }

    /// <summary>When the group last became empty (ms): its offsets expire from here.</summary>
    public long EmptySinceMs { get; set; } = nowMs;

    public bool Deleted { get; set; }

    public ConsumerMember? StaticMember(string instanceId) =>
        Members.Values.FirstOrDefault(m => m.InstanceId == instanceId);

    /// <summary>The group's state as Kafka names it: Empty, Assigning, Reconciling or Stable.</summary>
    public string StateName =>
        Members.Count == 0 ? "Empty"
        : GroupEpoch > AssignmentEpoch ? "Assigning"
        : Members.Values.Any(m => m.State != ConsumerMemberState.Stable || m.MemberEpoch != AssignmentEpoch) ? "Reconciling"
        : "Stable";

    /// <summary>The assignor of the group: the one most members ask for (the first configured when none does).</summary>
    public string AssignorName(string defaultAssignor) =>
        Members.Values.Where(m => m.ServerAssignor is not null)
            .GroupBy(m => m.ServerAssignor!)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Key)
            .FirstOrDefault() ?? defaultAssignor;

    /// <summary>Whether a member other than <paramref name="memberId"/> still holds the partition.</summary>
    public bool HeldByOther((Guid TopicId, int Partition) partition, string memberId) =>
        Members.Values.Any(m => m.MemberId != memberId && m.Owns(partition));

    public HashSet<(Guid TopicId, int Partition)> TargetOf(string memberId) => Target.GetValueOrDefault(memberId) ?? [];
}
