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
    public static List<PartitionChangeRecord> RemoveBroker(ClusterImage image, int brokerId, Func<int, bool> canLead)
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
                    change.Leader = Elect(partition.Replicas, isr, r => r != brokerId && canLead(r));
                }

                if (change.Isr is not null || change.Leader != PartitionImage.PartitionChangeNoLeaderChange)
                {
                    records.Add(change);
                }
            }
        }

        return records;
    }

    /// <summary>Leaders for partitions that have none, from ISR members that may lead now.</summary>
    public static List<PartitionChangeRecord> ElectLeaderless(ClusterImage image, Func<int, bool> canLead)
    {
        ArgumentNullException.ThrowIfNull(image);
        var records = new List<PartitionChangeRecord>();
        foreach (var topic in image.Topics.Values)
        {
            foreach (var partition in topic.Partitions.Values.Where(p => p.Leader < 0))
            {
                if (Elect(partition.Replicas, partition.Isr, canLead) is var leader and >= 0)
                {
                    records.Add(new PartitionChangeRecord { TopicId = topic.TopicId, PartitionId = partition.PartitionId, Leader = leader });
                }
            }
        }

        return records;
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
