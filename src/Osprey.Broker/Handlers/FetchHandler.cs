// Fetch (key 1), versions 4-18, with incremental fetch sessions (KIP-227, v7+).
//   Session id 0 and epoch -1: a sessionless full fetch. Epoch 0: a full fetch that opens a session (the answer
//   carries its id; 0 when max.incremental.fetch.session.cache.slots is full and no idle session can give way).
//   A session id with epoch -1 or 0 closes that session first. A session id with epoch N > 0 is an incremental
//   fetch: the request adds or updates partitions and forgets others (ForgottenTopicsData); the answer covers the
//   whole session but lists only partitions with records, an error, or a changed high watermark, last stable or
//   log start offset. Unknown session: FETCH_SESSION_ID_NOT_FOUND; wrong epoch: INVALID_FETCH_SESSION_EPOCH;
//   names vs ids differing from the session's: FETCH_SESSION_TOPIC_ID_ERROR. Partitions that returned data move
//   to the back of the session, so a busy partition cannot starve the others.
//   Long poll: when less than MinBytes is available, the fetch waits up to MaxWaitMs, woken by appends.
//   Records are read from the segment files into pooled buffers, which the connection returns to the pool once
//   the response has been encoded into its output pipe.
//   Byte limits: PartitionMaxBytes per partition, MaxBytes (v3+) in all; the first batch is returned even when it
//   is larger, so a consumer always makes progress. Records are never null (an empty set instead).
//   v13+ names topics by id (UNKNOWN_TOPIC_ID); v12+ flexible. High watermark = log end offset on a single node;
//   last stable offset = high watermark until transactions arrive.
using Osprey.Broker.Fetching;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class FetchHandler(IMetadataQuorum metadata, LogManager logs, AppendNotifier notifier, FetchSessionCache sessions) : RequestHandler<FetchRequest, FetchResponse>
{
    private const int FinalEpoch = -1;

    public override ApiKey ApiKey => ApiKey.Fetch;

    public override short MinVersion => 4;

    public override short MaxVersion => 18;

    protected override async ValueTask<FetchResponse> HandleAsync(RequestContext context, FetchRequest request, CancellationToken cancellationToken)
    {
        var byId = context.ApiVersion >= 13;
        FetchSession? session = null;
        var incremental = false;
        if (context.ApiVersion >= 7)
        {
            if (request.SessionEpoch is FinalEpoch or 0)
            {
                if (request.SessionId != 0)
                {
                    sessions.Remove(request.SessionId);
                }

                if (request.SessionEpoch == 0)
                {
                    session = sessions.TryCreate(byId, request.Topics.Sum(t => t.Partitions.Count));
                }
            }
            else
            {
                session = sessions.Get(request.SessionId);
                if (session is null)
                {
                    return new FetchResponse { ErrorCode = (short)ErrorCode.FetchSessionIdNotFound };
                }

                incremental = true;
            }
        }
        else if (request.SessionId != 0)
        {
            return new FetchResponse { ErrorCode = (short)ErrorCode.FetchSessionIdNotFound };
        }

        if (session is null)
        {
            return await FetchAsync(context, Requested(request, byId), request, null, incremental: false, cancellationToken).ConfigureAwait(false);
        }

        await session.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (incremental)
            {
                if (request.SessionEpoch != session.NextEpoch)
                {
                    return new FetchResponse { ErrorCode = (short)ErrorCode.InvalidFetchSessionEpoch };
                }

                if (session.UsesTopicIds != byId)
                {
                    return new FetchResponse { ErrorCode = (short)ErrorCode.FetchSessionTopicIdError };
                }

                foreach (var topic in request.ForgottenTopicsData)
                {
                    foreach (var partition in topic.Partitions)
                    {
                        session.Partitions.Remove(new FetchKey(byId ? topic.TopicId : Guid.Empty, byId ? "" : topic.Topic, partition));
                    }
                }
            }

            foreach (var (key, offset, maxBytes) in Requested(request, byId))
            {
                if (session.Partitions.TryGetValue(key, out var known))
                {
                    (known.FetchOffset, known.MaxBytes) = (offset, maxBytes);
                }
                else
                {
                    session.Partitions[key] = new SessionPartition(offset, maxBytes);
                }
            }

            var partitions = session.Partitions.Select(p => (p.Key, p.Value.FetchOffset, p.Value.MaxBytes)).ToList();
            var response = await FetchAsync(context, partitions, request, session, incremental, cancellationToken).ConfigureAwait(false);
            session.NextEpoch = request.SessionEpoch == int.MaxValue ? 1 : request.SessionEpoch + 1;
            session.LastUsedMs = sessions.NowMs;
            response.SessionId = session.Id;
            return response;
        }
        finally
        {
            session.Lock.Release();
        }
    }

    private static List<(FetchKey Key, long Offset, int MaxBytes)> Requested(FetchRequest request, bool byId) =>
        [.. request.Topics.SelectMany(t => t.Partitions.Select(p => (new FetchKey(byId ? t.TopicId : Guid.Empty, byId ? "" : t.Topic, p.Partition), p.FetchOffset, p.PartitionMaxBytes)))];

    private async Task<FetchResponse> FetchAsync(
        RequestContext context,
        List<(FetchKey Key, long Offset, int MaxBytes)> partitions, FetchRequest request, FetchSession? session, bool incremental, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(0, request.MaxWaitMs)));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        while (true)
        {
            // Take the wake-up before reading, so an append between the read and the wait is not missed.
            var appended = notifier.NextAppend;
            var (results, bytes) = Read(context, partitions, request);
            if (bytes >= request.MinBytes || request.MaxWaitMs <= 0 || linked.IsCancellationRequested || (incremental && results.Any(r => Changed(session!, r.Key, r.Data))))
            {
                return Respond(results, session, incremental);
            }

            // Not enough yet: this read's records are dropped, and their buffers go back to the pool.
            context.ReleaseResponseBuffers();

            try
            {
                await appended.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return Respond(Read(context, partitions, request).Results, session, incremental);
            }
        }
    }

    /// <summary>Whether an incremental response must list the partition: it has records, an error, or new offsets.</summary>
    private static bool Changed(FetchSession session, FetchKey key, FetchResponse.PartitionData data) =>
        !session.Partitions.TryGetValue(key, out var sent)
        || data.ErrorCode != 0
        || data.Records is { Length: > 0 }
        || data.HighWatermark != sent.SentHighWatermark
        || data.LastStableOffset != sent.SentLastStableOffset
        || data.LogStartOffset != sent.SentLogStartOffset;

    private static FetchResponse Respond(List<(FetchKey Key, FetchResponse.PartitionData Data)> results, FetchSession? session, bool incremental)
    {
        var response = new FetchResponse();
        FetchResponse.FetchableTopicResponse? current = null;
        foreach (var (key, data) in results)
        {
            if (session is not null)
            {
                if (incremental && !Changed(session, key, data))
                {
                    continue;
                }

                if (session.Partitions.TryGetValue(key, out var cached))
                {
                    (cached.SentHighWatermark, cached.SentLastStableOffset, cached.SentLogStartOffset) = (data.HighWatermark, data.LastStableOffset, data.LogStartOffset);
                }
            }

            if (current is null || current.Topic != key.Topic || current.TopicId != key.TopicId)
            {
                current = new FetchResponse.FetchableTopicResponse { Topic = key.Topic, TopicId = key.TopicId };
                response.Responses.Add(current);
            }

            current.Partitions.Add(data);
        }

        if (session is not null)
        {
            // Partitions that returned data go to the back of the session; the rest keep their turn.
            foreach (var (key, _) in results.Where(r => r.Data.Records is { Length: > 0 }))
            {
                if (session.Partitions.Remove(key, out var moved))
                {
                    session.Partitions[key] = moved;
                }
            }
        }

        return response;
    }

    private (List<(FetchKey Key, FetchResponse.PartitionData Data)> Results, long Bytes) Read(RequestContext context, List<(FetchKey Key, long Offset, int MaxBytes)> partitions, FetchRequest request)
    {
        var image = metadata.Image;
        var results = new List<(FetchKey, FetchResponse.PartitionData)>(partitions.Count);
        long total = 0;
        var budget = (long)request.MaxBytes;
        foreach (var (key, offset, maxBytes) in partitions)
        {
            var byId = key.TopicId != Guid.Empty;
            var topicImage = byId ? image.Topic(key.TopicId) : image.Topic(key.Topic);
            var result = new FetchResponse.PartitionData
            {
                PartitionIndex = key.Partition,
                HighWatermark = -1,
                LastStableOffset = -1,
                LogStartOffset = -1,
                Records = ReadOnlyMemory<byte>.Empty,
                AbortedTransactions = request.IsolationLevel == 1 ? [] : null,
            };
            results.Add((key, result));
            var log = topicImage is null ? null : logs.Get(topicImage.Name, key.Partition);
            if (log is null)
            {
                result.ErrorCode = (short)(byId && topicImage is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                continue;
            }

            var highWatermark = log.LogEndOffset;
            var lastStable = log.LastStableOffset;
            var readCommitted = request.IsolationLevel == 1;
            result.HighWatermark = highWatermark;
            result.LastStableOffset = lastStable;
            result.LogStartOffset = log.LogStartOffset;
            try
            {
                // read_committed stops at the last stable offset and names the aborted transactions in the range,
                // whose records the consumer then skips.
                var limit = (int)Math.Min(maxBytes, Math.Max(0, budget));
                var read = log.Read(offset, limit, readCommitted ? lastStable : highWatermark, minOneBatch: total == 0);
                if (read.Region is { } region)
                {
                    // Into a pooled buffer that lives until the response is in the socket's pipe: no array per
                    // fetch (large ones would be collected from the large-object heap by full GCs).
                    var buffer = context.RentResponseBuffer(region.Length);
                    region.CopyTo(buffer);
                    result.Records = buffer.AsMemory(0, region.Length);
                    total += region.Length;
                    budget -= region.Length;
                    if (readCommitted)
                    {
                        result.AbortedTransactions = log.AbortedTransactions(offset, lastStable)
                            .Select(a => new FetchResponse.AbortedTransaction { ProducerId = a.ProducerId, FirstOffset = a.FirstOffset })
                            .ToList();
                    }
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

        return (results, total);
    }
}
