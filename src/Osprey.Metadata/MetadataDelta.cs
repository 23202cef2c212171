using System.Collections.Immutable;

namespace Osprey.Metadata;

/// <summary>One partition that is new or changed between two images.</summary>
/// <param name="Before">The partition in the older image; null when it is new (a new topic or added partitions).</param>
public sealed record PartitionDelta(string Topic, Guid TopicId, PartitionImage? Before, PartitionImage After);

/// <summary>One broker registration that appeared, changed or went away.</summary>
/// <param name="Before">Null when the broker registered for the first time.</param>
/// <param name="After">Null when the broker was unregistered.</param>
public sealed record BrokerDelta(int Id, BrokerImage? Before, BrokerImage? After);

/// <summary>
/// What a node must do about its own replicas after a change: partitions it now leads, partitions it now follows
/// (a new leader, epoch or replica set), and partitions it no longer holds (removed from the replicas or deleted
/// with their topic), whose logs it deletes.
/// </summary>
public sealed record LocalReplicaChanges(
    ImmutableArray<PartitionDelta> Leaders,
    ImmutableArray<PartitionDelta> Followers,
    ImmutableArray<(string Topic, Guid TopicId, int Partition)> Deletes);

/// <summary>
/// The difference between two metadata images, for the code that acts on a change (the metadata publisher, the
/// replica manager, the coordinators). Images share every unchanged part, so the comparison skips those by
/// reference and costs what changed, not the size of the cluster. A topic deleted and created again under the
/// same name is a deletion plus a creation: its id is what identifies it.
/// </summary>
public sealed class MetadataDelta
{
    private MetadataDelta(ClusterImage before, ClusterImage after)
    {
        Before = before;
        After = after;
    }

    public ClusterImage Before { get; }

    public ClusterImage After { get; }

    /// <summary>Topics whose id is new in <see cref="After"/>.</summary>
    public ImmutableArray<TopicImage> CreatedTopics { get; private init; } = [];

    /// <summary>Topics of <see cref="Before"/> whose id is gone.</summary>
    public ImmutableArray<TopicImage> DeletedTopics { get; private init; } = [];

    /// <summary>Partitions that are new or differ in any field, created topics' partitions included.</summary>
    public ImmutableArray<PartitionDelta> ChangedPartitions { get; private init; } = [];

    /// <summary>Names of topics that exist in both images and whose configs differ.</summary>
    public ImmutableArray<string> ChangedTopicConfigs { get; private init; } = [];

    public ImmutableArray<BrokerDelta> ChangedBrokers { get; private init; } = [];

    /// <summary>Resource names ("" for the cluster default, else a node id) whose dynamic broker configs differ.</summary>
    public ImmutableArray<string> ChangedBrokerConfigs { get; private init; } = [];

    public bool FeaturesChanged => !Before.FinalizedFeatures.SequenceEqual(After.FinalizedFeatures);

    public bool ScramCredentialsChanged => !ReferenceEquals(Before.ScramCredentials, After.ScramCredentials);

    /// <summary>True when nothing a publisher acts on differs (only the offset may have moved).</summary>
    public bool IsEmpty =>
        CreatedTopics.IsEmpty && DeletedTopics.IsEmpty && ChangedPartitions.IsEmpty && ChangedTopicConfigs.IsEmpty &&
        ChangedBrokers.IsEmpty && ChangedBrokerConfigs.IsEmpty && !FeaturesChanged && !ScramCredentialsChanged;

    public static MetadataDelta Between(ClusterImage before, ClusterImage after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var created = ImmutableArray.CreateBuilder<TopicImage>();
        var deleted = ImmutableArray.CreateBuilder<TopicImage>();
        var partitions = ImmutableArray.CreateBuilder<PartitionDelta>();
        var configs = ImmutableArray.CreateBuilder<string>();
        if (!ReferenceEquals(before.Topics, after.Topics))
        {
            foreach (var topic in after.Topics.Values)
            {
                var old = before.Topic(topic.TopicId);
                if (ReferenceEquals(old, topic))
                {
                    continue;
                }

                if (old is null)
                {
                    created.Add(topic);
                }
                else if (!ReferenceEquals(old.Configs, topic.Configs) && !old.Configs.SequenceEqual(topic.Configs))
                {
                    configs.Add(topic.Name);
                }

                if (old is null || !ReferenceEquals(old.Partitions, topic.Partitions))
                {
                    foreach (var partition in topic.Partitions.Values)
                    {
                        var was = old?.Partitions.GetValueOrDefault(partition.PartitionId);
                        if (was is null || !Same(was, partition))
                        {
                            partitions.Add(new PartitionDelta(topic.Name, topic.TopicId, was, partition));
                        }
                    }
                }
            }

            deleted.AddRange(before.Topics.Values.Where(t => !after.TopicNames.ContainsKey(t.TopicId)));
        }

        var brokers = ImmutableArray.CreateBuilder<BrokerDelta>();
        if (!ReferenceEquals(before.Brokers, after.Brokers))
        {
            foreach (var id in before.Brokers.Keys.Union(after.Brokers.Keys).Order())
            {
                var (was, now) = (before.Brokers.GetValueOrDefault(id), after.Brokers.GetValueOrDefault(id));
                if (!ReferenceEquals(was, now) && !Equals(was, now))
                {
                    brokers.Add(new BrokerDelta(id, was, now));
                }
            }
        }

        var brokerConfigs = ImmutableArray.CreateBuilder<string>();
        if (!ReferenceEquals(before.BrokerConfigs, after.BrokerConfigs))
        {
            foreach (var name in before.BrokerConfigs.Keys.Union(after.BrokerConfigs.Keys).Order(StringComparer.Ordinal))
            {
                if (!before.BrokerConfigsOf(name).SequenceEqual(after.BrokerConfigsOf(name)))
                {
                    brokerConfigs.Add(name);
                }
            }
        }

        return new MetadataDelta(before, after)
        {
            CreatedTopics = created.ToImmutable(),
            DeletedTopics = deleted.ToImmutable(),
            ChangedPartitions = partitions.ToImmutable(),
            ChangedTopicConfigs = configs.ToImmutable(),
            ChangedBrokers = brokers.ToImmutable(),
            ChangedBrokerConfigs = brokerConfigs.ToImmutable(),
        };
    }

    /// <summary>
    /// The changes that concern the replicas of broker <paramref name="brokerId"/>, as Kafka's brokers sort a
    /// delta: a partition it leads in the new image is a leader change, one whose replicas include it is a
    /// follower change, and one it held before but no longer does (or whose topic is gone) is a delete.
    /// </summary>
    public LocalReplicaChanges LocalChanges(int brokerId)
    {
        var leaders = ImmutableArray.CreateBuilder<PartitionDelta>();
        var followers = ImmutableArray.CreateBuilder<PartitionDelta>();
        var deletes = ImmutableArray.CreateBuilder<(string, Guid, int)>();
        foreach (var change in ChangedPartitions)
        {
            if (change.After.Leader == brokerId)
            {
                leaders.Add(change);
            }
            else if (change.After.Replicas.Contains(brokerId))
            {
                followers.Add(change);
            }
            else if (change.Before?.Replicas.Contains(brokerId) == true)
            {
                deletes.Add((change.Topic, change.TopicId, change.After.PartitionId));
            }
        }

        foreach (var topic in DeletedTopics)
        {
            deletes.AddRange(topic.Partitions.Values.Where(p => p.Replicas.Contains(brokerId)).Select(p => (topic.Name, topic.TopicId, p.PartitionId)));
        }

        return new LocalReplicaChanges(leaders.ToImmutable(), followers.ToImmutable(), deletes.ToImmutable());
    }

    /// <summary>Field-by-field equality (records compare immutable arrays by reference, which is too strict here).</summary>
    private static bool Same(PartitionImage a, PartitionImage b) =>
        ReferenceEquals(a, b) ||
        (a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && a.PartitionEpoch == b.PartitionEpoch &&
         a.LeaderRecoveryState == b.LeaderRecoveryState && a.Replicas.SequenceEqual(b.Replicas) && a.Isr.SequenceEqual(b.Isr) &&
         a.AddingReplicas.SequenceEqual(b.AddingReplicas) && a.RemovingReplicas.SequenceEqual(b.RemovingReplicas) &&
         a.EligibleLeaderReplicas.SequenceEqual(b.EligibleLeaderReplicas) && a.LastKnownElr.SequenceEqual(b.LastKnownElr));
}
