using System.Collections.Immutable;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Metadata;

/// <summary>A partition as the metadata records describe it.</summary>
public sealed record PartitionImage(int PartitionId, ImmutableArray<int> Replicas, ImmutableArray<int> Isr, int Leader, int LeaderEpoch, int PartitionEpoch)
{
    /// <summary>Replicas being added or removed by a reassignment.</summary>
    public ImmutableArray<int> AddingReplicas { get; init; } = [];

    public ImmutableArray<int> RemovingReplicas { get; init; } = [];

    /// <summary>Eligible leader replicas (KIP-966): left the ISR while below min ISR, still have every committed record.</summary>
    public ImmutableArray<int> EligibleLeaderReplicas { get; init; } = [];

    public ImmutableArray<int> LastKnownElr { get; init; } = [];

    /// <summary>0 recovered, 1 recovering (after an unclean election).</summary>
    public sbyte LeaderRecoveryState { get; init; }

    /// <summary>The partition after a change record: what it sets, with the epochs moved on as Kafka moves them.</summary>
    public PartitionImage Apply(PartitionChangeRecord change) => this with
    {
        Isr = change.Isr is { } isr ? [.. isr] : Isr,
        Leader = change.Leader == PartitionChangeNoLeaderChange ? Leader : change.Leader,
        LeaderEpoch = change.Leader == PartitionChangeNoLeaderChange ? LeaderEpoch : LeaderEpoch + 1,
        PartitionEpoch = PartitionEpoch + 1,
        Replicas = change.Replicas is { } replicas ? [.. replicas] : Replicas,
        AddingReplicas = change.AddingReplicas is { } adding ? [.. adding] : AddingReplicas,
        RemovingReplicas = change.RemovingReplicas is { } removing ? [.. removing] : RemovingReplicas,
        EligibleLeaderReplicas = change.EligibleLeaderReplicas is { } elr ? [.. elr] : EligibleLeaderReplicas,
        LastKnownElr = change.LastKnownElr is { } lastKnown ? [.. lastKnown] : LastKnownElr,
        LeaderRecoveryState = change.LeaderRecoveryState < 0 ? LeaderRecoveryState : change.LeaderRecoveryState,
    };

    /// <summary>PartitionChangeRecord.Leader when the leader stays as it is.</summary>
    public const int PartitionChangeNoLeaderChange = -2;
}

/// <summary>A listener a broker registered: its name, address and security protocol (Kafka's SecurityProtocol ids).</summary>
public sealed record BrokerEndpoint(string Name, string Host, int Port, short SecurityProtocol);

/// <summary>
/// A registered broker: its epoch (a new one at every registration), the incarnation that registered, where clients
/// reach it, its rack, and whether it is fenced (serves no partitions) or shutting down under control.
/// </summary>
public sealed record BrokerImage(int Id, long Epoch, Guid IncarnationId, ImmutableArray<BrokerEndpoint> Endpoints, string? Rack, bool Fenced, bool InControlledShutdown)
{
    /// <summary>The feature ranges the broker supports, by name.</summary>
    public ImmutableSortedDictionary<string, (short Min, short Max)> SupportedFeatures { get; init; } =
        ImmutableSortedDictionary<string, (short Min, short Max)>.Empty.WithComparers(StringComparer.Ordinal);
}

/// <summary>A user's SCRAM credential for one mechanism (RFC 5802: StoredKey = H(ClientKey), ServerKey).</summary>
public sealed record ScramCredential(ImmutableArray<byte> Salt, ImmutableArray<byte> StoredKey, ImmutableArray<byte> ServerKey, int Iterations);

/// <summary>A topic: its id, partitions and the configs set on it (only the ones set; defaults live elsewhere).</summary>
public sealed record TopicImage(string Name, Guid TopicId, ImmutableSortedDictionary<int, PartitionImage> Partitions, ImmutableSortedDictionary<string, string> Configs);

/// <summary>
/// The state the metadata records add up to. Immutable: applying a record gives a new image, so readers use a
/// consistent snapshot without locks.
/// </summary>
public sealed record ClusterImage(
    ImmutableSortedDictionary<string, TopicImage> Topics,
    ImmutableDictionary<Guid, string> TopicNames,
    ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, string>> BrokerConfigs,
    long LastOffset)
{
    /// <summary>The first producer id not yet handed out (ProducerIdsRecord: ids are allocated in blocks).</summary>
    public long NextProducerId { get; init; }

    /// <summary>
    /// SCRAM credentials by user, then by mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512): the salt, iterations and the
    /// keys derived from the salted password, never the password.
    /// </summary>
    public ImmutableSortedDictionary<string, ImmutableSortedDictionary<sbyte, ScramCredential>> ScramCredentials { get; init; } =
        ImmutableSortedDictionary<string, ImmutableSortedDictionary<sbyte, ScramCredential>>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>The registered brokers, by id.</summary>
    public ImmutableSortedDictionary<int, BrokerImage> Brokers { get; init; } = ImmutableSortedDictionary<int, BrokerImage>.Empty;

    /// <summary>The cluster id a quorum's first leader recorded (null in a single node's log, whose id is in meta.properties).</summary>
    public string? ClusterId { get; init; }

    /// <summary>Finalized feature levels, by name (FeatureLevelRecord; level 0 is not listed).</summary>
    public ImmutableSortedDictionary<string, short> FinalizedFeatures { get; init; } =
        ImmutableSortedDictionary<string, short>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>ConfigRecord resource types (Kafka's ConfigResource.Type values).</summary>
    public const sbyte TopicResource = 2;
    public const sbyte BrokerResource = 4;

    public static ClusterImage Empty { get; } = new(
        ImmutableSortedDictionary<string, TopicImage>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableDictionary<Guid, string>.Empty,
        ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, string>>.Empty.WithComparers(StringComparer.Ordinal),
        -1);

    /// <summary>
    /// The dynamic broker configs set for <paramref name="resourceName"/>: a node id, or "" for the cluster-wide
    /// default.
    /// </summary>
    public ImmutableSortedDictionary<string, string> BrokerConfigsOf(string resourceName) =>
        BrokerConfigs.GetValueOrDefault(resourceName) ?? ImmutableSortedDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);

    public TopicImage? Topic(string name) => Topics.GetValueOrDefault(name);

    public TopicImage? Topic(Guid id) => TopicNames.TryGetValue(id, out var name) ? Topics.GetValueOrDefault(name) : null;

    /// <summary>The image after <paramref name="record"/>, found at metadata log offset <paramref name="offset"/>.</summary>
    public ClusterImage Apply(IVersionedMessage record, long offset) => (record switch
    {
        TopicRecord t => this with
        {
            Topics = Topics.SetItem(t.Name, new TopicImage(t.Name, t.TopicId, ImmutableSortedDictionary<int, PartitionImage>.Empty, ImmutableSortedDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal))),
            TopicNames = TopicNames.SetItem(t.TopicId, t.Name),
        },
        PartitionRecord p when TopicNames.TryGetValue(p.TopicId, out var name) => WithTopic(name, topic => topic with
        {
            Partitions = topic.Partitions.SetItem(p.PartitionId, new PartitionImage(p.PartitionId, [.. p.Replicas], [.. p.Isr], p.Leader, p.LeaderEpoch, p.PartitionEpoch)
            {
                AddingReplicas = [.. p.AddingReplicas],
                RemovingReplicas = [.. p.RemovingReplicas],
                EligibleLeaderReplicas = [.. p.EligibleLeaderReplicas],
                LastKnownElr = [.. p.LastKnownElr],
                LeaderRecoveryState = p.LeaderRecoveryState,
            }),
        }),
        ConfigRecord { ResourceType: TopicResource } c when Topics.ContainsKey(c.ResourceName) => WithTopic(c.ResourceName, topic => topic with
        {
            Configs = c.Value is null ? topic.Configs.Remove(c.Name) : topic.Configs.SetItem(c.Name, c.Value),
        }),
        ConfigRecord { ResourceType: BrokerResource } c => this with
        {
            BrokerConfigs = BrokerConfigs.SetItem(
                c.ResourceName,
                c.Value is null ? BrokerConfigsOf(c.ResourceName).Remove(c.Name) : BrokerConfigsOf(c.ResourceName).SetItem(c.Name, c.Value)),
        },
        UserScramCredentialRecord u => this with
        {
            ScramCredentials = ScramCredentials.SetItem(
                u.Name,
                (ScramCredentials.GetValueOrDefault(u.Name) ?? ImmutableSortedDictionary<sbyte, ScramCredential>.Empty)
                    .SetItem(u.Mechanism, new ScramCredential([.. u.Salt], [.. u.StoredKey], [.. u.ServerKey], u.Iterations))),
        },
        RemoveUserScramCredentialRecord r when ScramCredentials.TryGetValue(r.Name, out var mechanisms) => this with
        {
            ScramCredentials = mechanisms.Remove(r.Mechanism) is { Count: > 0 } left ? ScramCredentials.SetItem(r.Name, left) : ScramCredentials.Remove(r.Name),
        },
        ProducerIdsRecord ids => this with { NextProducerId = Math.Max(NextProducerId, ids.NextProducerId) },
        PartitionChangeRecord c when TopicNames.TryGetValue(c.TopicId, out var name) && Topics[name].Partitions.TryGetValue(c.PartitionId, out var partition) =>
            WithTopic(name, topic => topic with { Partitions = topic.Partitions.SetItem(c.PartitionId, partition.Apply(c)) }),
        RegisterBrokerRecord r => this with
        {
            Brokers = Brokers.SetItem(r.BrokerId, new BrokerImage(
                r.BrokerId,
                r.BrokerEpoch,
                r.IncarnationId,
                [.. r.EndPoints.Select(e => new BrokerEndpoint(e.Name, e.Host, e.Port, e.SecurityProtocol))],
                r.Rack,
                r.Fenced,
                r.InControlledShutdown)
            {
                SupportedFeatures = r.Features.ToImmutableSortedDictionary(f => f.Name, f => (f.MinSupportedVersion, f.MaxSupportedVersion), StringComparer.Ordinal),
            }),
        },
        UnregisterBrokerRecord u when Brokers.TryGetValue(u.BrokerId, out var broker) && broker.Epoch == u.BrokerEpoch => this with { Brokers = Brokers.Remove(u.BrokerId) },
        FenceBrokerRecord f when Brokers.TryGetValue(f.Id, out var broker) && broker.Epoch == f.Epoch => WithBroker(broker with { Fenced = true }),
        UnfenceBrokerRecord f when Brokers.TryGetValue(f.Id, out var broker) && broker.Epoch == f.Epoch => WithBroker(broker with { Fenced = false }),
        BrokerRegistrationChangeRecord c when Brokers.TryGetValue(c.BrokerId, out var broker) && broker.Epoch == c.BrokerEpoch => WithBroker(broker with
        {
            Fenced = c.Fenced < 0 ? broker.Fenced : c.Fenced == 1,
            InControlledShutdown = c.InControlledShutdown < 0 ? broker.InControlledShutdown : c.InControlledShutdown == 1,
        }),
        ClusterIdentityRecord c when ClusterId is null => this with { ClusterId = c.ClusterId },
        FeatureLevelRecord f => this with { FinalizedFeatures = f.FeatureLevel == 0 ? FinalizedFeatures.Remove(f.Name) : FinalizedFeatures.SetItem(f.Name, f.FeatureLevel) },
        RemoveTopicRecord r when TopicNames.TryGetValue(r.TopicId, out var name) => this with
        {
            Topics = Topics.Remove(name),
            TopicNames = TopicNames.Remove(r.TopicId),
        },
        _ => this, // a record about something that no longer exists changes nothing
    }) with { LastOffset = offset };

    private ClusterImage WithBroker(BrokerImage broker) => this with { Brokers = Brokers.SetItem(broker.Id, broker) };

    private ClusterImage WithTopic(string name, Func<TopicImage, TopicImage> change) =>
        this with { Topics = Topics.SetItem(name, change(Topics[name])) };
}
