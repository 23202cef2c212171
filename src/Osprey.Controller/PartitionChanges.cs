using System.Collections.Immutable;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Controller;

/// <summary>
/// The controller's partition decisions that follow from brokers' standing, free of I/O: a broker that is fenced (or
/// shutting down) leaves every ISR and leads nothing, the next leader coming from the remaining ISR (a clean
/// election: the first replica, in replica order, that is in the ISR and may lead); a partition left without a leader
/// gets one as soon as an ISR member may lead again; and a leader's AlterPartition is checked and applied.
/// </summary>
public static class PartitionChanges
{
    /// <summary>
    /// The PartitionChangeRecords that take <paramref name="brokerId"/> out of every ISR it is in (unless it is the
    /// last member: an ISR is never empty, so that the partition can come back with it) and move leadership off it.
    /// <paramref name="canLead"/> tells which brokers may lead; the broker itself never may.
    /// </summary>
    public static List<PartitionChangeRecord> RemoveBroker(ClusterImage image, int brokerId, Func<int, bool> canLead, Func<TopicImage, bool>? uncleanAllowed = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(canLead);
        var records = new List<PartitionChangeRecord>();
        foreach (var topic in image.Topics.Values)
        {
            foreach (var partition in topic.Partitions.Values)
            {
                var inIsr = partition.Isr.Contains(brokerId);
                if (!inIsr && partition.Leader != brokerId)
                {
                    continue;
                }

                var isr = inIsr && partition.Isr.Length > 1 ? partition.Isr.Remove(brokerId) : partition.Isr;
                var change = new PartitionChangeRecord { TopicId = topic.TopicId, PartitionId = partition.PartitionId, Leader = PartitionImage.PartitionChangeNoLeaderChange };
                if (isr != partition.Isr)
                {
                    change.Isr = [.. isr];
                }

                if (partition.Leader == brokerId)
                {
                    (change.Leader, var uncleanIsr) = ElectOrUnclean(topic, partition.Replicas, isr, r => r != brokerId && canLead(r), uncleanAllowed);
                    change.Isr = uncleanIsr is { } unclean ? [.. unclean] : change.Isr;
                }

                if (change.Isr is not null || change.Leader != PartitionImage.PartitionChangeNoLeaderChange)
                {
                    records.Add(change);
                }
            }
        }

        return records;
    }

    /// <summary>
    /// Leaders for partitions that have none, from ISR members that may lead now; where none may and
    /// <paramref name="uncleanAllowed"/> says the topic allows it (unclean.leader.election.enable), from any replica
    /// that may lead, which is then the whole ISR.
    /// </summary>
    public static List<PartitionChangeRecord> ElectLeaderless(ClusterImage image, Func<int, bool> canLead, Func<TopicImage, bool>? uncleanAllowed = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var records = new List<PartitionChangeRecord>();
        foreach (var topic in image.Topics.Values)
        {
            foreach (var partition in topic.Partitions.Values.Where(p => p.Leader < 0))
            {
                var (leader, uncleanIsr) = ElectOrUnclean(topic, partition.Replicas, partition.Isr, canLead, uncleanAllowed);
                if (leader >= 0)
                {
                    records.Add(new PartitionChangeRecord { TopicId = topic.TopicId, PartitionId = partition.PartitionId, Leader = leader, Isr = uncleanIsr is { } isr ? [.. isr] : null });
                }
            }
        }

        return records;
    }

    /// <summary>
    /// Auto leader rebalance: partitions whose leader is not their preferred replica (the first) move back to it when
    /// it is in the ISR and may lead, as a preferred election would.
    /// </summary>
    public static List<PartitionChangeRecord> BalanceLeaders(ClusterImage image, Func<int, bool> canLead)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(canLead);
        var records = new List<PartitionChangeRecord>();
        foreach (var topic in image.Topics.Values)
        {
            foreach (var partition in topic.Partitions.Values)
            {
                var preferred = partition.Replicas.Length > 0 ? partition.Replicas[0] : -1;
                if (preferred >= 0 && partition.Leader != preferred && partition.Isr.Contains(preferred) && canLead(preferred))
                {
                    records.Add(new PartitionChangeRecord { TopicId = topic.TopicId, PartitionId = partition.PartitionId, Leader = preferred });
                }
            }
        }

        return records;
    }

    /// <summary>A clean election, or, when that finds no one and the topic allows it, an unclean one (with its new ISR).</summary>
    private static (int Leader, ImmutableArray<int>? UncleanIsr) ElectOrUnclean(
        TopicImage topic, ImmutableArray<int> replicas, ImmutableArray<int> isr, Func<int, bool> canLead, Func<TopicImage, bool>? uncleanAllowed)
    {
        var leader = Elect(replicas, isr, canLead);
        if (leader >= 0 || uncleanAllowed is null || !uncleanAllowed(topic))
        {
            return (leader, null);
        }

        var unclean = replicas.FirstOrDefault(canLead, -1);
        return unclean >= 0 ? (unclean, [unclean]) : (-1, null);
    }

    /// <summary>
    /// ElectLeaders: a preferred election (type 0) moves leadership to each partition's first replica when it is in
    /// the ISR and may lead (PREFERRED_LEADER_NOT_AVAILABLE otherwise); an unclean election (type 1) gives a partition
    /// without a leader one, from the ISR when it can, else from any replica that may lead, whose ISR it then is alone
    /// (ELIGIBLE_LEADERS_NOT_AVAILABLE when there is none). A partition that already has the leader asked for is
    /// ELECTION_NOT_NEEDED. <paramref name="partitions"/> null means every partition.
    /// </summary>
    public static (List<PartitionChangeRecord> Records, List<(string Topic, int Partition, ErrorCode Error, string? Message)> Results) ElectLeaders(
        ClusterImage image, sbyte electionType, IReadOnlyList<(string Topic, int Partition)>? partitions, Func<int, bool> canLead)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(canLead);
        var records = new List<PartitionChangeRecord>();
        var results = new List<(string, int, ErrorCode, string?)>();
        var asked = partitions ?? [.. image.Topics.Values.SelectMany(t => t.Partitions.Keys.Select(p => (t.Name, p)))];
        foreach (var (name, index) in asked)
        {
            if (image.Topic(name) is not { } topic || !topic.Partitions.TryGetValue(index, out var partition))
            {
                results.Add((name, index, ErrorCode.UnknownTopicOrPartition, image.Topic(name) is null ? $"No such topic as {name}" : $"No such partition as {name}-{index}"));
                continue;
            }

            var change = new PartitionChangeRecord { TopicId = topic.TopicId, PartitionId = index, Leader = PartitionImage.PartitionChangeNoLeaderChange };
            if (electionType == 0)
            {
                var preferred = partition.Replicas.Length > 0 ? partition.Replicas[0] : -1;
                if (partition.Leader == preferred)
                {
                    results.Add((name, index, ErrorCode.ElectionNotNeeded, "Leader election not needed for topic partition."));
                    continue;
                }

                if (!partition.Isr.Contains(preferred) || !canLead(preferred))
                {
                    results.Add((name, index, ErrorCode.PreferredLeaderNotAvailable, $"Failed to elect leader for partition {name}-{index} under strategy PreferredReplicaPartitionLeaderElectionStrategy"));
                    continue;
                }

                change.Leader = preferred;
            }
            else
            {
                if (partition.Leader >= 0)
                {
                    results.Add((name, index, ErrorCode.ElectionNotNeeded, "Leader election not needed for topic partition."));
                    continue;
                }

                var leader = Elect(partition.Replicas, partition.Isr, canLead);
                if (leader < 0)
                {
                    // Unclean: a replica outside the ISR leads; records only it has not are lost.
                    leader = partition.Replicas.FirstOrDefault(canLead, -1);
                    change.Isr = leader >= 0 ? [leader] : null;
                }

                if (leader < 0)
                {
                    results.Add((name, index, ErrorCode.EligibleLeadersNotAvailable, $"Failed to elect leader for partition {name}-{index} under strategy UncleanLeaderElectionStrategy"));
                    continue;
                }

                change.Leader = leader;
            }

            records.Add(change);
            results.Add((name, index, ErrorCode.None, null));
        }

        return (records, results);
    }

    /// <summary>The first replica, in replica order, that is in <paramref name="isr"/> and may lead; -1 when none.</summary>
    public static int Elect(ImmutableArray<int> replicas, ImmutableArray<int> isr, Func<int, bool> canLead)
    {
        ArgumentNullException.ThrowIfNull(canLead);
        foreach (var replica in replicas)
        {
            if (isr.Contains(replica) && canLead(replica))
            {
                return replica;
            }
        }

        return -1;
    }

    /// <summary>
    /// AlterPartition: a leader asks to change its partitions' ISR. Only the broker registered at the epoch it names
    /// may ask (else STALE_BROKER_EPOCH for the whole request); per partition it must be the leader
    /// (NOT_LEADER_OR_FOLLOWER) at the current leader epoch (FENCED_LEADER_EPOCH) and partition epoch
    /// (INVALID_UPDATE_VERSION), the new ISR must hold only replicas and the leader (INVALID_REQUEST), and a replica
    /// joining must be unfenced, not shutting down, and at its current broker epoch (INELIGIBLE_REPLICA, KIP-903).
    /// </summary>
    public static (List<PartitionChangeRecord> Records, AlterPartitionResponse Response) AlterPartition(ClusterImage image, AlterPartitionRequest request)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(request);
        var records = new List<PartitionChangeRecord>();
        var response = new AlterPartitionResponse();
        if (!image.Brokers.TryGetValue(request.BrokerId, out var requester) || requester.Epoch != request.BrokerEpoch)
        {
            response.ErrorCode = (short)ErrorCode.StaleBrokerEpoch;
            return (records, response);
        }

        foreach (var topicData in request.Topics)
        {
            var topic = image.Topic(topicData.TopicId);
            var topicResult = new AlterPartitionResponse.TopicData { TopicId = topicData.TopicId };
            response.Topics.Add(topicResult);
            foreach (var data in topicData.Partitions)
            {
                var result = new AlterPartitionResponse.PartitionData { PartitionIndex = data.PartitionIndex, LeaderId = -1, LeaderEpoch = -1, PartitionEpoch = -1 };
                topicResult.Partitions.Add(result);
                if (topic is null)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicId;
                    continue;
                }

                if (!topic.Partitions.TryGetValue(data.PartitionIndex, out var partition))
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }

                // v3 names each member with its broker epoch; v2 only by id.
                var newIsr = data.NewIsrWithEpochs.Count > 0 ? data.NewIsrWithEpochs.Select(b => (b.BrokerId, b.BrokerEpoch)).ToList() : [.. data.NewIsr.Select(b => (BrokerId: b, BrokerEpoch: -1L))];
                var error = Check(image, partition, request.BrokerId, data, newIsr);
                if (error != ErrorCode.None)
                {
                    result.ErrorCode = (short)error;
                    continue;
                }

                var isr = newIsr.Select(b => b.BrokerId).ToList();
                var epoch = partition.PartitionEpoch;
                if (!isr.SequenceEqual(partition.Isr))
                {
                    records.Add(new PartitionChangeRecord { TopicId = topic.TopicId, PartitionId = partition.PartitionId, Isr = isr, Leader = PartitionImage.PartitionChangeNoLeaderChange });
                    epoch++;
                }

                (result.LeaderId, result.LeaderEpoch, result.Isr, result.PartitionEpoch) = (partition.Leader, partition.LeaderEpoch, isr, epoch);
            }
        }

        return (records, response);
    }

    private static ErrorCode Check(ClusterImage image, PartitionImage partition, int leader, AlterPartitionRequest.PartitionData data, List<(int BrokerId, long BrokerEpoch)> newIsr)
    {
        if (partition.Leader != leader)
        {
            return ErrorCode.NotLeaderOrFollower;
        }

        if (data.LeaderEpoch != partition.LeaderEpoch)
        {
            return ErrorCode.FencedLeaderEpoch;
        }

        if (data.PartitionEpoch != partition.PartitionEpoch)
        {
            return ErrorCode.InvalidUpdateVersion;
        }

        if (newIsr.Count == 0 || newIsr.All(b => b.BrokerId != leader) || newIsr.Any(b => !partition.Replicas.Contains(b.BrokerId))
            || newIsr.Select(b => b.BrokerId).Distinct().Count() != newIsr.Count)
        {
            return ErrorCode.InvalidRequest;
        }

        foreach (var (broker, brokerEpoch) in newIsr.Where(b => !partition.Isr.Contains(b.BrokerId)))
        {
            if (!image.Brokers.TryGetValue(broker, out var registration) || registration.Fenced || registration.InControlledShutdown
                || (brokerEpoch >= 0 && registration.Epoch != brokerEpoch))
            {
                return ErrorCode.IneligibleReplica;
            }
        }

        return ErrorCode.None;
    }
}
