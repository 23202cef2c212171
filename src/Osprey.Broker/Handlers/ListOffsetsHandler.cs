// ListOffsets (key 2), versions 1-11.
//   Timestamp -2 earliest (log start offset), -1 latest (the high watermark, or the last stable offset for
//   read_committed), -3 (v7+) the record with the largest timestamp, -4 (v8+) earliest local (the same here),
//   -5 (v9+) earliest pending upload (the same here); otherwise the first record whose timestamp is at least the
//   one given, or -1/-1 when none is readable (at or beyond the high watermark, or under read_committed the last
//   stable offset). Consumers (replica id -1) are answered by the leader only: NOT_LEADER_OR_FOLLOWER elsewhere,
//   FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for a CurrentLeaderEpoch (v4+) not the leader's, and
//   OFFSET_NOT_AVAILABLE while a new leader's high watermark is behind its epoch's start (KIP-207). A broker's own
//   debugging lookup (replica id -2) may ask any replica and sees up to the log end.
using Osprey.Broker.Replication;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class ListOffsetsHandler(IMetadataQuorum metadata, ReplicaManager replicas) : RequestHandler<ListOffsetsRequest, ListOffsetsResponse>
{
    public const long Latest = -1;
    public const long Earliest = -2;
    public const long MaxTimestamp = -3;
    public const long EarliestLocal = -4;
    public const long EarliestPendingUpload = -5;

    public override ApiKey ApiKey => ApiKey.ListOffsets;

    public override short MinVersion => 1;

    public override short MaxVersion => 11;

    protected override ValueTask<ListOffsetsResponse> HandleAsync(RequestContext context, ListOffsetsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new ListOffsetsResponse();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            var topicImage = image.Topic(topic.Name);
            foreach (var partition in topic.Partitions)
            {
                var result = new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = partition.PartitionIndex };
                topicResponse.Partitions.Add(result);
                var debugging = request.ReplicaId == -2;
                var (leader, error) = debugging
                    ? (topicImage is null ? null : replicas.Get(topic.Name, partition.PartitionIndex), ErrorCode.UnknownTopicOrPartition)
                    : replicas.Leader(topicImage, partition.PartitionIndex, context.ApiVersion >= 4 ? partition.CurrentLeaderEpoch : -1);
                if (leader is null)
                {
                    result.ErrorCode = (short)error;
                    continue;
                }

                if (!debugging && leader.HighWatermarkBehindEpochStart)
                {
                    result.ErrorCode = (short)ErrorCode.OffsetNotAvailable;
                    continue;
                }

                var log = leader.Log;
                if (context.ApiVersion >= 4)
                {
                    result.LeaderEpoch = topicImage!.Partitions.TryGetValue(partition.PartitionIndex, out var p) ? p.LeaderEpoch : -1;
                }

                var readCommitted = request.IsolationLevel == 1;
                var highWatermark = debugging ? log.LogEndOffset : leader.HighWatermark;
                var lastReadable = readCommitted ? Math.Min(log.LastStableOffset, highWatermark) : highWatermark;
                var found = partition.Timestamp switch
                {
                    Latest => new TimestampAndOffset(-1, lastReadable),
                    Earliest or EarliestLocal or EarliestPendingUpload => new TimestampAndOffset(-1, log.LogStartOffset),
                    MaxTimestamp => log.MaxTimestampAndOffset() ?? new TimestampAndOffset(-1, -1),
                    < 0 => (TimestampAndOffset?)null,
                    var t => log.OffsetForTimestamp(t) ?? new TimestampAndOffset(-1, -1),
                };
                if (found is null)
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    continue;
                }

                if (partition.Timestamp is MaxTimestamp or >= 0 && found.Value.Offset >= lastReadable)
                {
                    found = new TimestampAndOffset(-1, -1); // not readable yet
                }

                result.Timestamp = found.Value.Timestamp;
                result.Offset = found.Value.Offset;
            }
        }

        return ValueTask.FromResult(response);
    }
}
