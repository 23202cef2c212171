namespace Osprey.Controller;

/// <summary>A broker replicas may be placed on: registered, unfenced, not shutting down.</summary>
public readonly record struct PlacementBroker(int Id, string? Rack);

/// <summary>
/// Where a new topic's (or new partitions') replicas go: rack-aware round robin. Brokers are ordered so that racks
/// alternate; each partition's first replica (its preferred leader) takes the next position from a random start, so
/// leadership spreads evenly; the other replicas follow at a shifted distance that changes every round of partitions,
/// and land on racks not yet used by the partition while there are any. Only the brokers given are used.
/// </summary>
public static class ReplicaPlacer
{
    /// <summary>
    /// The replicas of partitions <paramref name="firstPartition"/> onwards, or the INVALID_REPLICATION_FACTOR message
    /// (Kafka's words) when there are fewer brokers than <paramref name="replicationFactor"/>.
    /// </summary>
    public static (IReadOnlyList<IReadOnlyList<int>>? Assignment, string? Error) Place(
        IReadOnlyCollection<PlacementBroker> brokers, int partitions, int replicationFactor, Random random, int firstPartition = 0)
    {
        ArgumentNullException.ThrowIfNull(brokers);
        ArgumentNullException.ThrowIfNull(random);
        if (replicationFactor > brokers.Count)
        {
            return (null, $"Unable to replicate the partition {replicationFactor} time(s): The target replication factor of {replicationFactor} cannot be reached because only {brokers.Count} broker(s) are registered.");
        }

        if (replicationFactor < 1)
        {
            return (null, $"Replication factor must be larger than 0, or -1 to use the default value.");
        }

        var ordered = RackAlternating(brokers);
        var n = ordered.Count;
        var racks = ordered.Select(b => b.Rack).Distinct().Count();
        var start = random.Next(n);
        var shift = random.Next(n);
        var assignment = new List<IReadOnlyList<int>>(partitions);
        for (var p = firstPartition; p < firstPartition + partitions; p++)
        {
            if (p > firstPartition && (p - firstPartition) % n == 0)
            {
                shift++;
            }

            var first = (start + p) % n;
            var chosen = new List<PlacementBroker> { ordered[first] };
            for (var j = 1; j < replicationFactor; j++)
            {
                var usedRacks = chosen.Select(b => b.Rack).ToHashSet();
                PlacementBroker? pick = null;
                PlacementBroker? fallback = null;
                for (var k = 0; k < n - 1 && pick is null; k++)
                {
                    var candidate = ordered[(first + 1 + ((shift + j - 1 + k) % (n - 1))) % n];
                    if (chosen.Contains(candidate))
                    {
                        continue;
                    }

                    fallback ??= candidate;
                    if (usedRacks.Count >= racks || !usedRacks.Contains(candidate.Rack))
                    {
                        pick = candidate;
                    }
                }

                chosen.Add(pick ?? fallback!.Value);
            }

            assignment.Add([.. chosen.Select(b => b.Id)]);
        }

        return (assignment, null);
    }

    /// <summary>Brokers by id within each rack, the racks taken in turn: a, b, c, a, b, c, …</summary>
    private static List<PlacementBroker> RackAlternating(IReadOnlyCollection<PlacementBroker> brokers)
    {
        var byRack = brokers
            .GroupBy(b => b.Rack ?? "")
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new Queue<PlacementBroker>(g.OrderBy(b => b.Id)))
            .ToList();
        var ordered = new List<PlacementBroker>(brokers.Count);
        while (ordered.Count < brokers.Count)
        {
            foreach (var rack in byRack.Where(r => r.Count > 0))
            {
                ordered.Add(rack.Dequeue());
            }
        }

        return ordered;
    }
}
