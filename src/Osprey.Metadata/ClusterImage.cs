using System.Collections.Immutable;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Metadata;

/// <summary>A partition as the metadata records describe it.</summary>
public sealed record PartitionImage(int PartitionId, ImmutableArray<int> Replicas, ImmutableArray<int> Isr, int Leader, int LeaderEpoch, int PartitionEpoch);

/// <summary>A topic: its id, partitions and the configs set on it (only the ones set; defaults live elsewhere).</summary>
/// <summary>A user's SCRAM credential for one mechanism (RFC 5802: StoredKey = H(ClientKey), ServerKey).</summary>
public sealed record ScramCredential(ImmutableArray<byte> Salt, ImmutableArray<byte> StoredKey, ImmutableArray<byte> ServerKey, int Iterations);

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
            Partitions = topic.Partitions.SetItem(p.PartitionId, new PartitionImage(p.PartitionId, [.. p.Replicas], [.. p.Isr], p.Leader, p.LeaderEpoch, p.PartitionEpoch)),
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
        RemoveTopicRecord r when TopicNames.TryGetValue(r.TopicId, out var name) => this with
        {
            Topics = Topics.Remove(name),
            TopicNames = TopicNames.Remove(r.TopicId),
        },
        _ => this, // a record about something that no longer exists changes nothing
    }) with { LastOffset = offset };

    private ClusterImage WithTopic(string name, Func<TopicImage, TopicImage> change) =>
        this with { Topics = Topics.SetItem(name, change(Topics[name])) };
}
