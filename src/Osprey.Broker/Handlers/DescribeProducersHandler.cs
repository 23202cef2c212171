// DescribeProducers (key 61), version 0.
//   For each partition asked for: the idempotent and transactional producers its log knows, with epoch, last
//   sequence, when they last wrote and the first offset of an open transaction. Unknown topic or partition:
//   UNKNOWN_TOPIC_OR_PARTITION for that partition.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class DescribeProducersHandler(IMetadataQuorum metadata, LogManager logs) : RequestHandler<DescribeProducersRequest, DescribeProducersResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeProducers;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override ValueTask<DescribeProducersResponse> HandleAsync(RequestContext context, DescribeProducersRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new DescribeProducersResponse();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new DescribeProducersResponse.TopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            foreach (var index in topic.PartitionIndexes)
            {
                var partition = new DescribeProducersResponse.PartitionResponse { PartitionIndex = index };
                topicResponse.Partitions.Add(partition);
                if (image.Topic(topic.Name) is null || logs.Get(topic.Name, index) is not { } log)
                {
                    partition.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    partition.ErrorMessage = $"{topic.Name}-{index} does not exist.";
                    continue;
                }

                partition.ActiveProducers.AddRange(log.ActiveProducers().Select(p => new DescribeProducersResponse.ProducerState
                {
                    ProducerId = p.ProducerId,
                    ProducerEpoch = p.Epoch,
                    LastSequence = p.LastSequence,
                    LastTimestamp = p.LastTimestamp,
                    CoordinatorEpoch = p.CoordinatorEpoch,
                    CurrentTxnStartOffset = p.CurrentTxnFirstOffset,
                }));
            }
        }

        return ValueTask.FromResult(response);
    }
}
