// Fetch (key 1), versions 4-18.
//   Sessionless: every request names all its partitions and the answer's session id is 0. A client asking for a new
//   session (epoch 0) gets session id 0, which KIP-227 defines as "no session created", and goes on with full
//   fetches; an incremental fetch on a session id this broker never gave is FETCH_SESSION_ID_NOT_FOUND.
//   Long poll: when less than MinBytes is available, the fetch waits up to MaxWaitMs, woken by appends.
//   Byte limits: PartitionMaxBytes per partition, MaxBytes (v3+) in all; the first batch is returned even when it
//   is larger, so a consumer always makes progress. Records are never null (an empty set instead).
//   v13+ names topics by id (UNKNOWN_TOPIC_ID); v12+ flexible. High watermark = log end offset on a single node;
//   last stable offset = high watermark until transactions arrive.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class FetchHandler(MetadataLog metadata, LogManager logs, AppendNotifier notifier) : RequestHandler<FetchRequest, FetchResponse>
{
    public override ApiKey ApiKey => ApiKey.Fetch;

    public override short MinVersion => 4;

    public override short MaxVersion => 18;

    protected override async ValueTask<FetchResponse> HandleAsync(RequestContext context, FetchRequest request, CancellationToken cancellationToken)
    {
        if (request.SessionId != 0)
        {
            return new FetchResponse { ErrorCode = (short)ErrorCode.FetchSessionIdNotFound, SessionId = 0 };
        }

        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(0, request.MaxWaitMs)));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        while (true)
        {
            // Take the wake-up before reading, so an append between the read and the wait is not missed.
            var appended = notifier.NextAppend;
            var (response, bytes) = Read(request, context.ApiVersion);
            if (bytes >= request.MinBytes || request.MaxWaitMs <= 0 || linked.IsCancellationRequested || response.ErrorCode != 0)
            {
                return response;
            }

            try
            {
                await appended.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return Read(request, context.ApiVersion).Response;
            }
        }
    }

    private (FetchResponse Response, long Bytes) Read(FetchRequest request, short version)
    {
        var image = metadata.Image;
        var byId = version >= 13;
        var response = new FetchResponse { SessionId = 0 };
        long total = 0;
        var budget = (long)request.MaxBytes;
        foreach (var topic in request.Topics)
        {
            var topicImage = byId ? image.Topic(topic.TopicId) : image.Topic(topic.Topic);
            var topicResponse = new FetchResponse.FetchableTopicResponse { Topic = topic.Topic, TopicId = topic.TopicId };
            response.Responses.Add(topicResponse);
            foreach (var partition in topic.Partitions)
            {
                var result = new FetchResponse.PartitionData
                {
                    PartitionIndex = partition.Partition,
                    HighWatermark = -1,
                    LastStableOffset = -1,
                    LogStartOffset = -1,
                    Records = ReadOnlyMemory<byte>.Empty,
                    AbortedTransactions = request.IsolationLevel == 1 ? [] : null,
                };
                topicResponse.Partitions.Add(result);
                var log = topicImage is null ? null : logs.Get(topicImage.Name, partition.Partition);
                if (log is null)
                {
                    result.ErrorCode = (short)(byId && topicImage is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                    continue;
                }

                var highWatermark = log.LogEndOffset;
                result.HighWatermark = highWatermark;
                result.LastStableOffset = highWatermark;
                result.LogStartOffset = log.LogStartOffset;
                try
                {
                    var limit = (int)Math.Min(partition.PartitionMaxBytes, Math.Max(0, budget));
                    var read = log.Read(partition.FetchOffset, limit, highWatermark, minOneBatch: total == 0);
                    if (read.Region is { } region)
                    {
                        result.Records = region.ToArray();
                        total += region.Length;
                        budget -= region.Length;
                    }
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

        return (response, total);
    }
}
