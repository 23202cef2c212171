// WriteTxnMarkers (key 27), versions 1-2.
//   A transaction coordinator asks the leaders of a transaction's partitions to write its COMMIT or ABORT marker;
//   the marker is answered once every in-sync replica has it. For a partition this broker leads the coordinator
//   writes it through the same path. Per partition: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
//   NOT_ENOUGH_REPLICAS(_AFTER_APPEND), REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS (a __consumer_offsets
//   partition still loading here), or the storage error.
using Osprey.Broker.Transactions;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class WriteTxnMarkersHandler(TransactionCoordinator transactions, IMetadataQuorum metadata) : RequestHandler<WriteTxnMarkersRequest, WriteTxnMarkersResponse>
{
    public override ApiKey ApiKey => ApiKey.WriteTxnMarkers;

    public override short MinVersion => 1;

    public override short MaxVersion => 2;

    protected override async ValueTask<WriteTxnMarkersResponse> HandleAsync(RequestContext context, WriteTxnMarkersRequest request, CancellationToken cancellationToken)
    {
        var response = new WriteTxnMarkersResponse();
        var image = metadata.Image;
        foreach (var marker in request.Markers)
        {
            var result = new WriteTxnMarkersResponse.WritableTxnMarkerResult { ProducerId = marker.ProducerId };
            response.Markers.Add(result);
            foreach (var topic in marker.Topics)
            {
                var topicResult = new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult { Name = topic.Name };
                result.Topics.Add(topicResult);
                foreach (var partition in topic.PartitionIndexes)
                {
                    var error = ErrorCode.None;
                    if (image.Topic(topic.Name)?.Partitions.ContainsKey(partition) != true)
                    {
                        error = ErrorCode.UnknownTopicOrPartition;
                    }
                    else
                    {
                        error = await transactions.WriteLocalMarkerAsync(
                            topic.Name, partition, marker.ProducerId, marker.ProducerEpoch, marker.TransactionResult, marker.CoordinatorEpoch, cancellationToken).ConfigureAwait(false);
                    }

                    topicResult.Partitions.Add(new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = partition, ErrorCode = (short)error });
                }
            }
        }

        return response;
    }
}
