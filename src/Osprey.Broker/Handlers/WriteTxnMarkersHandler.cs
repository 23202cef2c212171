// WriteTxnMarkers (key 27), versions 1-2.
//   A transaction coordinator asks the leaders of a transaction's partitions to write its COMMIT or ABORT marker.
//   On a single node the coordinator writes them itself through the same path; this API serves it to any caller
//   (and to other brokers once clustering comes). Per partition: UNKNOWN_TOPIC_OR_PARTITION, or the storage error.
using Osprey.Broker.Transactions;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

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
                        try
                        {
                            await transactions.WriteMarkersAsync(marker.ProducerId, marker.ProducerEpoch, marker.TransactionResult, [(topic.Name, partition)], cancellationToken).ConfigureAwait(false);
                        }
                        catch (KafkaProtocolException e)
                        {
                            error = e.ErrorCode;
                        }
                        catch (KafkaStorageException e)
                        {
                            error = e.ErrorCode;
                        }
                    }

                    topicResult.Partitions.Add(new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = partition, ErrorCode = (short)error });
                }
            }
        }

        return response;
    }
}
