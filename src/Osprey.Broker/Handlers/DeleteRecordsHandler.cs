// DeleteRecords (key 21), versions 0-2.
//   Moves a partition's log start offset up to the given offset (-1: the high watermark); whole segments below it
//   are deleted. An offset past the high watermark is OFFSET_OUT_OF_RANGE. Answers with the new low watermark.
//   Only the leader deletes (NOT_LEADER_OR_FOLLOWER elsewhere); followers take the new log start offset from their
//   next fetch.
using Osprey.Broker.Replication;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class DeleteRecordsHandler(IMetadataQuorum metadata, ReplicaManager replicas) : RequestHandler<DeleteRecordsRequest, DeleteRecordsResponse>
{
    public override ApiKey ApiKey => ApiKey.DeleteRecords;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override ValueTask<DeleteRecordsResponse> HandleAsync(RequestContext context, DeleteRecordsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new DeleteRecordsResponse();
        foreach (var topic in request.Topics)
        {
            var topicResult = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = topic.Name };
            response.Topics.Add(topicResult);
            foreach (var partition in topic.Partitions)
            {
                var result = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = partition.PartitionIndex, LowWatermark = -1 };
                topicResult.Partitions.Add(result);
                var (leader, error) = replicas.Leader(image.Topic(topic.Name), partition.PartitionIndex);
                if (leader is null)
                {
                    result.ErrorCode = (short)error;
                    continue;
                }

                var log = leader.Log;
                try
                {
                    var highWatermark = leader.HighWatermark;
                    var offset = partition.Offset == -1 ? highWatermark : partition.Offset;
                    if (offset < 0 || offset > highWatermark)
                    {
                        result.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                        continue;
                    }

                    result.LowWatermark = log.DeleteRecordsBefore(offset);
                }
                catch (KafkaProtocolException e)
                {
                    result.ErrorCode = (short)e.ErrorCode;
                }
                catch (KafkaStorageException e)
                {
                    result.ErrorCode = (short)e.ErrorCode;
                }
            }
        }

        return ValueTask.FromResult(response);
    }
}
