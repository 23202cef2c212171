using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Controller;

/// <summary>
/// The replicas, ISR and leader of new partitions (a new topic's, or partitions added to one): placed by
/// <see cref="ReplicaPlacer"/> over the brokers that may take replicas, or checked when the caller assigned them by
/// hand, as Kafka's controller checks a manual assignment.
/// </summary>
public static class PartitionAssigner
{
    /// <summary>Brokers new replicas may go to: registered, unfenced and not shutting down.</summary>
    public static IReadOnlyList<PlacementBroker> UsableBrokers(ClusterImage image) =>
        [.. image.Brokers.Values.Where(b => !b.Fenced && !b.InControlledShutdown).OrderBy(b => b.Id).Select(b => new PlacementBroker(b.Id, b.Rack))];

    /// <summary>
    /// Places <paramref name="partitions"/> partitions of <paramref name="replicationFactor"/> replicas each, numbered
    /// from <paramref name="firstPartition"/>; an INVALID_REPLICATION_FACTOR error when the brokers are too few.
    /// </summary>
    public static (IReadOnlyList<IReadOnlyList<int>>? Assignment, ErrorCode Error, string? Message) Place(
        ClusterImage image, int partitions, int replicationFactor, Random random, int firstPartition = 0)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (assignment, error) = ReplicaPlacer.Place(UsableBrokers(image), partitions, replicationFactor, random, firstPartition);
        return assignment is null ? (null, ErrorCode.InvalidReplicationFactor, error) : (assignment, ErrorCode.None, null);
    }

    /// <summary>
    /// Checks replicas given by hand (one list per partition, in partition order): each list non-empty, no broker
    /// twice, only registered brokers, every list as long as <paramref name="expectedReplicas"/> (the first list's
    /// length when null), and at least one replica of each partition able to lead. Null when they are acceptable,
    /// else the INVALID_REPLICA_ASSIGNMENT message (Kafka's words).
    /// </summary>
    public static string? CheckManual(ClusterImage image, IReadOnlyList<IReadOnlyList<int>> assignment, int firstPartition = 0, int? expectedReplicas = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(assignment);
        var expected = expectedReplicas ?? (assignment.Count > 0 ? assignment[0].Count : 0);
        for (var i = 0; i < assignment.Count; i++)
        {
            var replicas = assignment[i];
            var partition = firstPartition + i;
            if (replicas.Count == 0)
            {
                return "The manual partition assignment includes an empty replica list.";
            }

            var seen = new HashSet<int>();
            foreach (var broker in replicas)
            {
                if (!seen.Add(broker))
                {
                    return $"The manual partition assignment includes the broker {broker} more than once.";
                }

                if (!image.Brokers.ContainsKey(broker))
                {
                    return $"The manual partition assignment includes broker {broker}, but no such broker is registered.";
                }
            }

            if (replicas.Count != expected)
            {
                return $"The manual partition assignment includes a partition with {replicas.Count} replica(s), but this is not consistent with previous partitions, which have {expected} replica(s).";
            }

            if (!replicas.Any(b => CanLead(image, b)))
            {
                return $"All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown.";
            }
        }

        return null;
    }

    /// <summary>
    /// The PartitionRecord of a new partition: its ISR is the replicas that are unfenced and not shutting down, its
    /// leader the first of them (the preferred leader when it can lead), epochs from zero.
    /// </summary>
    public static PartitionRecord NewPartition(ClusterImage image, Guid topicId, int partition, IReadOnlyList<int> replicas)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(replicas);
        var isr = replicas.Where(b => CanLead(image, b)).ToList();
        return new PartitionRecord
        {
            PartitionId = partition,
            TopicId = topicId,
            Replicas = [.. replicas],
            Isr = isr,
            Leader = isr.Count > 0 ? isr[0] : -1,
            LeaderEpoch = 0,
            PartitionEpoch = 0,
        };
    }

    private static bool CanLead(ClusterImage image, int broker) =>
        image.Brokers.TryGetValue(broker, out var b) && !b.Fenced && !b.InControlledShutdown;
}
