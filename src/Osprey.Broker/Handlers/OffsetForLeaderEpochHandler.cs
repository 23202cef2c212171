// OffsetForLeaderEpoch (key 23), versions 2-4.
//   For each partition: the end offset of the requested leader epoch (the start of the next greater epoch, or the
//   log end offset for the current one) and the greatest epoch ≤ the one asked. A CurrentLeaderEpoch newer than
//   the partition's is UNKNOWN_LEADER_EPOCH, older is FENCED_LEADER_EPOCH. Consumers use it to detect truncation,
//   followers to find where their log parts from the leader's. Consumers (replica id -1) and followers are answered
//   by the leader only (NOT_LEADER_OR_FOLLOWER elsewhere); a debugging request (replica id -2, and v2, which sends
//   none) by any replica.
using Osprey.Broker.Replication;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class OffsetForLeaderEpochHandler(IMetadataQuorum metadata, ReplicaManager replicas) : RequestHandler<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>
{
    public override ApiKey ApiKey => ApiKey.OffsetForLeaderEpoch;

    public override short MinVersion => 2;

    public override short MaxVersion => 4;

    protected override ValueTask<OffsetForLeaderEpochResponse> HandleAsync(RequestContext context, OffsetForLeaderEpochRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new OffsetForLeaderEpochResponse();
        foreach (var topic in request.Topics)
        {
            var topicResult = new OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult { Topic = topic.Topic };
            response.Topics.Add(topicResult);
            var topicImage = image.Topic(topic.Topic);
            foreach (var partition in topic.Partitions)
            {
                var result = new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = partition.Partition };
                topicResult.Partitions.Add(result);
                var (replica, error) = request.ReplicaId == -2
                    ? (topicImage is null ? null : replicas.Get(topic.Topic, partition.Partition), ErrorCode.UnknownTopicOrPartition)
                    : replicas.Leader(topicImage, partition.Partition);
                if (replica is null || !topicImage!.Partitions.TryGetValue(partition.Partition, out var partitionImage))
                {
                    result.ErrorCode = (short)error;
                    continue;
                }

                if (partition.CurrentLeaderEpoch >= 0 && partition.CurrentLeaderEpoch != partitionImage.LeaderEpoch)
                {
                    result.ErrorCode = (short)(partition.CurrentLeaderEpoch > partitionImage.LeaderEpoch ? ErrorCode.UnknownLeaderEpoch : ErrorCode.FencedLeaderEpoch);
                    continue;
                }

                var log = replica.Log;
                var (epoch, end) = log.LeaderEpochs.EndOffsetFor(partition.LeaderEpoch, log.LogEndOffset);
                result.LeaderEpoch = epoch;
                result.EndOffset = end;
            }
        }

        return ValueTask.FromResult(response);
    }
}
