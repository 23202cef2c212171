// Produce (key 0), versions 3-13.
//   acks must be -1 (all: answered once the batches are fsynced, unless durability is turned off), 0 (no
//   response) or 1 (after the append); anything else is INVALID_REQUIRED_ACKS for every partition.
//   Partitions of one request are appended concurrently, so their fsyncs share group-commit rounds.
//   Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (v13 by id: UNKNOWN_TOPIC_ID), CORRUPT_MESSAGE,
//   MESSAGE_TOO_LARGE, UNSUPPORTED_FOR_MESSAGE_FORMAT (magic 0/1), INVALID_RECORD, KAFKA_STORAGE_ERROR.
//   v13 names topics by id.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class ProduceHandler(MetadataLog metadata, LogManager logs, AppendNotifier notifier) : RequestHandler<ProduceRequest, ProduceResponse>
{
    public override ApiKey ApiKey => ApiKey.Produce;

    public override short MinVersion => 3;

    public override short MaxVersion => 13;

    protected override async ValueTask<ProduceResponse> HandleAsync(RequestContext context, ProduceRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var byId = context.ApiVersion >= 13;
        var response = new ProduceResponse();
        var appends = new List<Task>();
        foreach (var topicData in request.TopicData)
        {
            var topic = byId ? image.Topic(topicData.TopicId) : image.Topic(topicData.Name);
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topicData.Name, TopicId = topicData.TopicId };
            response.Responses.Add(topicResponse);
            foreach (var partitionData in topicData.PartitionData)
            {
                var result = new ProduceResponse.PartitionProduceResponse { Index = partitionData.Index, BaseOffset = -1 };
                topicResponse.PartitionResponses.Add(result);
                if (request.Acks is not (-1 or 0 or 1))
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequiredAcks;
                    continue;
                }

                var log = topic is null ? null : logs.Get(topic.Name, partitionData.Index);
                if (log is null)
                {
                    result.ErrorCode = (short)(byId && topic is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                    continue;
                }

                var epoch = topic!.Partitions.TryGetValue(partitionData.Index, out var partition) ? partition.LeaderEpoch : -1;
                appends.Add(AppendAsync(log, partitionData.Records, request.Acks == -1, epoch, result));
            }
        }

        await Task.WhenAll(appends).ConfigureAwait(false);
        if (appends.Count > 0)
        {
            notifier.Notify();
        }

        return response;
    }

    private async Task AppendAsync(PartitionLog log, ReadOnlyMemory<byte>? records, bool durable, int leaderEpoch, ProduceResponse.PartitionProduceResponse result)
    {
        try
        {
            if (records is not { Length: > 0 } bytes)
            {
                throw new KafkaProtocolException(ErrorCode.CorruptMessage, "A produce request must carry at least one record batch.");
            }

            var appended = await logs.AppendAsync(log, bytes, durable, leaderEpoch).ConfigureAwait(false);
            result.BaseOffset = appended.FirstOffset;
            result.LogAppendTimeMs = appended.LogAppendTime;
            result.LogStartOffset = appended.LogStartOffset;
        }
        catch (KafkaProtocolException e)
        {
            result.ErrorCode = (short)e.ErrorCode;
            result.ErrorMessage = e.Message;
        }
        catch (KafkaStorageException e)
        {
            result.ErrorCode = (short)e.ErrorCode;
            result.ErrorMessage = e.Message;
        }
    }
}
