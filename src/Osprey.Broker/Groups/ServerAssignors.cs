namespace Osprey.Broker.Groups;

/// <summary>What a server-side assignor knows of a member: its subscribed topics and what its target was before.</summary>
public sealed record AssignorMember(string MemberId, IReadOnlySet<string> Topics, IReadOnlySet<(Guid TopicId, int Partition)> Previous);

/// <summary>A server-side assignor of the consumer group protocol (group.consumer.assignors).</summary>
public interface IServerAssignor
{
    string Name { get; }

    /// <summary>Every member's target: each partition of a subscribed topic to exactly one of its subscribers.</summary>
    Dictionary<string, HashSet<(Guid TopicId, int Partition)>> Assign(IReadOnlyList<AssignorMember> members, IReadOnlyDictionary<string, (Guid Id, int Partitions)> topics);
}

public static class ServerAssignors
{
    public static IServerAssignor? Named(string name) => name switch
    {
        "uniform" => new UniformAssignor(),
        "range" => new RangeAssignor(),
        _ => null,
    };
}

/// <summary>
/// Kafka's default server assignor: partitions spread evenly over the members that subscribe to them, each member
/// keeping what it had where balance allows (so a rebalance moves as little as possible).
/// </summary>
public sealed class UniformAssignor : IServerAssignor
{
    public string Name => "uniform";

    public Dictionary<string, HashSet<(Guid TopicId, int Partition)>> Assign(IReadOnlyList<AssignorMember> members, IReadOnlyDictionary<string, (Guid Id, int Partitions)> topics)
    {
        var ordered = members.OrderBy(m => m.MemberId, StringComparer.Ordinal).ToList();
        var result = ordered.ToDictionary(m => m.MemberId, _ => new HashSet<(Guid TopicId, int Partition)>());
        var partitions = topics.OrderBy(t => t.Key, StringComparer.Ordinal)
            .Where(t => ordered.Any(m => m.Topics.Contains(t.Key)))
            .SelectMany(t => Enumerable.Range(0, t.Value.Partitions).Select(p => (Topic: t.Key, Id: t.Value.Id, Partition: p)))
            .ToList();
        if (ordered.Count == 0 || partitions.Count == 0)
        {
            return result;
        }

        var nameOf = topics.ToDictionary(t => t.Value.Id, t => t.Key);
        bool Subscribes(AssignorMember member, (Guid Id, int Partition) partition) => member.Topics.Contains(nameOf[partition.Id]);

        // Sticky: each member keeps what it had and still subscribes to, up to an even share.
        var share = (partitions.Count + ordered.Count - 1) / ordered.Count;
        var taken = new HashSet<(Guid, int)>();
        var valid = partitions.Select(p => (p.Id, p.Partition)).ToHashSet();
        foreach (var member in ordered)
        {
            foreach (var partition in member.Previous.Where(valid.Contains).Where(p => Subscribes(member, p)).OrderBy(p => p.TopicId).ThenBy(p => p.Partition))
            {
                if (result[member.MemberId].Count < share && taken.Add(partition))
                {
                    result[member.MemberId].Add(partition);
                }
            }
        }

        // The rest go, one by one, to the least loaded subscriber.
        foreach (var (_, id, index) in partitions.Where(p => !taken.Contains((p.Id, p.Partition))))
        {
            var partition = (id, index);
            var to = ordered.Where(m => Subscribes(m, partition)).MinBy(m => result[m.MemberId].Count)!;
            result[to.MemberId].Add(partition);
        }

        // Balance: move a partition from a member to a subscriber holding two or more fewer, until none can.
        for (var moves = 0; moves < partitions.Count * ordered.Count; moves++)
        {
            var moved = false;
            foreach (var from in ordered.OrderByDescending(m => result[m.MemberId].Count))
            {
                foreach (var partition in result[from.MemberId].OrderBy(p => p.TopicId).ThenByDescending(p => p.Partition))
                {
                    var to = ordered.Where(m => Subscribes(m, partition) && result[m.MemberId].Count < result[from.MemberId].Count - 1)
                        .MinBy(m => result[m.MemberId].Count);
                    if (to is not null)
                    {
                        result[from.MemberId].Remove(partition);
                        result[to.MemberId].Add(partition);
                        moved = true;
                        break;
                    }
                }

                if (moved)
                {
                    break;
                }
            }

            if (!moved)
            {
                break;
            }
        }

        return result;
    }
}

/// <summary>
/// The range assignor on the server: for each topic, its subscribers (in member id order) receive contiguous
/// ranges of partitions, the first ones one more when the count does not divide, so that members subscribed to
/// co-partitioned topics receive the same partition numbers of each.
/// </summary>
public sealed class RangeAssignor : IServerAssignor
{
    public string Name => "range";

    public Dictionary<string, HashSet<(Guid TopicId, int Partition)>> Assign(IReadOnlyList<AssignorMember> members, IReadOnlyDictionary<string, (Guid Id, int Partitions)> topics)
    {
        var result = members.ToDictionary(m => m.MemberId, _ => new HashSet<(Guid TopicId, int Partition)>());
        foreach (var (topic, (id, count)) in topics)
        {
            var subscribers = members.Where(m => m.Topics.Contains(topic)).OrderBy(m => m.MemberId, StringComparer.Ordinal).ToList();
            if (subscribers.Count == 0)
            {
                continue;
            }

            var each = count / subscribers.Count;
            var extra = count % subscribers.Count;
            var next = 0;
            for (var i = 0; i < subscribers.Count; i++)
            {
                var take = each + (i < extra ? 1 : 0);
                for (var p = next; p < next + take; p++)
                {
                    result[subscribers[i].MemberId].Add((id, p));
                }

                next += take;
            }
        }

        return result;
    }
}
