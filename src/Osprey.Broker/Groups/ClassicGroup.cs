using Osprey.Protocol.Messages;

namespace Osprey.Broker.Groups;

/// <summary>The states of a classic group, named as Kafka reports them.</summary>
public enum GroupState
{
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

/// <summary>A member of a classic group: who it is, what it can do, what it was given, and what it waits for.</summary>
public sealed class ClassicMember(string memberId)
{
    public string MemberId { get; set; } = memberId;

    public string? GroupInstanceId { get; init; }

    public string ClientId { get; set; } = "";

    public string ClientHost { get; set; } = "";

    public int RebalanceTimeoutMs { get; set; }

    public int SessionTimeoutMs { get; set; }

    public string ProtocolType { get; set; } = "";

    /// <summary>The protocols the member supports, in its order of preference, with their metadata.</summary>
    public List<(string Name, byte[] Metadata)> Protocols { get; set; } = [];

    public byte[] Assignment { get; set; } = [];

    /// <summary>The JoinGroup waiting for the rebalance to complete.</summary>
    public TaskCompletionSource<JoinGroupResponse>? PendingJoin { get; set; }

    /// <summary>The SyncGroup waiting for the leader's assignment.</summary>
    public TaskCompletionSource<SyncGroupResponse>? PendingSync { get; set; }

    public ITimer? SessionTimer { get; set; }

    /// <summary>When the session ends unless the member is heard from (ms); a late timer callback checks it.</summary>
    public long SessionDeadlineMs { get; set; }

    /// <summary>Counts session timer restarts, so a superseded timer that still fires does nothing.</summary>
    public int SessionEpoch { get; set; }

    /// <summary>The JoinGroup version the member last used (the response it waits for is encoded at it).</summary>
    public short JoinVersion { get; set; }

    public byte[] MetadataFor(string? protocol) => Protocols.FirstOrDefault(p => p.Name == protocol).Metadata ?? [];
}

/// <summary>
/// A classic-protocol group (JoinGroup/SyncGroup/Heartbeat): members, state, generation, the protocol chosen, the
/// leader. Changed only under its shard's lock.
/// </summary>
public sealed class ClassicGroup(string groupId, long nowMs)
{
    public string GroupId { get; } = groupId;

    public GroupState State { get; private set; } = GroupState.Empty;

    /// <summary>When the group entered its state (ms): empty groups' offsets expire from here.</summary>
    public long StateTimestamp { get; private set; } = nowMs;

    public int Generation { get; set; }

    public string? ProtocolType { get; set; }

    public string? ProtocolName { get; set; }

    public string? LeaderId { get; set; }

    public OrderedDictionary<string, ClassicMember> Members { get; } = [];

    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet.</summary>
    public HashSet<string> PendingMembers { get; } = [];

    public Dictionary<string, string> StaticMembers { get; } = [];

    public ITimer? RebalanceTimer { get; set; }

    /// <summary>True while the first rebalance of an empty group waits out group.initial.rebalance.delay.ms.</summary>
    public bool InitialDelay { get; set; }

    public void TransitionTo(GroupState state, long nowMs)
    {
        State = state;
        StateTimestamp = nowMs;
    }

    public bool AllMembersJoined => PendingMembers.Count == 0 && Members.Values.All(m => m.PendingJoin is not null);

    public int MaxRebalanceTimeoutMs => Members.Count == 0 ? 0 : Members.Values.Max(m => m.RebalanceTimeoutMs);

    /// <summary>Whether every member supports <paramref name="protocols"/>' type and at least one of them in common.</summary>
    public bool Supports(string protocolType, IEnumerable<string> protocols)
    {
        if (Members.Count == 0)
        {
            return true;
        }

        return ProtocolType == protocolType && Candidates().Intersect(protocols).Any();
    }

    /// <summary>The protocols every member supports.</summary>
    public IEnumerable<string> Candidates() =>
        Members.Values.Select(m => m.Protocols.Select(p => p.Name)).Aggregate((a, b) => a.Intersect(b));

    /// <summary>The protocol most members prefer among those all support (Kafka's vote).</summary>
    public string SelectProtocol()
    {
        var candidates = Candidates().ToList();
        return Members.Values
            .Select(m => m.Protocols.Select(p => p.Name).First(candidates.Contains))
            .GroupBy(p => p)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => candidates.IndexOf(g.Key))
            .First().Key;
    }

    public static string StateName(GroupState state) => state.ToString();
}
