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
//   v13+ names topics by id (UNKNOWN_TOPIC_ID); v12+ flexible. Only the partition's leader serves it:
//   NOT_LEADER_OR_FOLLOWER elsewhere, with the leader (v12+) and its endpoint (v16+); a CurrentLeaderEpoch (v9+)
//   older than the leader's is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. Consumers (replica id -1) read up
//   to the high watermark (what every in-sync replica holds; the log end on a leader that is the whole ISR), and
//   read_committed up to the last stable offset, never past the high watermark. A follower (ReplicaState v15+,
//   ReplicaId before) reads up to the log end; its fetch offset is its progress, which moves the high watermark, and
//   a log that parts from the leader's by leader epochs (LastFetchedEpoch, v12+) gets DivergingEpoch, no records.
using Osprey.Broker.Control;
using Osprey.Broker.Fetching;
using Osprey.Broker.Replication;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class FetchHandler(IMetadataQuorum metadata, ReplicaManager replicas, AppendNotifier notifier, FetchSessionCache sessions, BrokerOptions options) : RequestHandler<FetchRequest, FetchResponse>
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

            foreach (var target in Requested(request, byId))
            {
                if (!session.Partitions.TryGetValue(target.Key, out var known))
                {
                    known = new SessionPartition(target.Offset, target.MaxBytes);
                    session.Partitions[target.Key] = known;
                }

                (known.FetchOffset, known.MaxBytes, known.CurrentLeaderEpoch, known.LastFetchedEpoch) = (target.Offset, target.MaxBytes, target.CurrentLeaderEpoch, target.LastFetchedEpoch);
            }

            var partitions = session.Partitions.Select(p => new FetchTarget(p.Key, p.Value.FetchOffset, p.Value.MaxBytes, p.Value.CurrentLeaderEpoch, p.Value.LastFetchedEpoch)).ToList();
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

    private static List<FetchTarget> Requested(FetchRequest request, bool byId) =>
        [.. request.Topics.SelectMany(t => t.Partitions.Select(p => new FetchTarget(
            new FetchKey(byId ? t.TopicId : Guid.Empty, byId ? "" : t.Topic, p.Partition), p.FetchOffset, p.PartitionMaxBytes, p.CurrentLeaderEpoch, p.LastFetchedEpoch)))];

    private async Task<FetchResponse> FetchAsync(
        RequestContext context,
        List<FetchTarget> partitions, FetchRequest request, FetchSession? session, bool incremental, CancellationToken cancellationToken)
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
                return Respond(context.ApiVersion, results, session, incremental);
            }

            // Not enough yet: this read's records are dropped, and their buffers go back to the pool.
            context.ReleaseResponseBuffers();

            try
            {
                await appended.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return Respond(context.ApiVersion, Read(context, partitions, request).Results, session, incremental);
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

    private FetchResponse Respond(short version, List<(FetchKey Key, FetchResponse.PartitionData Data)> results, FetchSession? session, bool incremental)
    {
        var response = new FetchResponse();

        // Where the leaders named in NOT_LEADER_OR_FOLLOWER answers are (v16+), so clients go there at once.
        var image = metadata.Image;
        foreach (var leaderId in results.Where(r => version >= 16 && r.Data.CurrentLeader.LeaderId >= 0).Select(r => r.Data.CurrentLeader.LeaderId).Distinct())
        {
            if (ClusterView.Brokers(image, options.ListenerName).FirstOrDefault(b => b.Broker.Id == leaderId) is { Broker: not null } found)
            {
                response.NodeEndpoints.Add(new FetchResponse.NodeEndpoint { NodeId = leaderId, Host = found.Endpoint.Host, Port = found.Endpoint.Port, Rack = found.Broker.Rack });
            }
        }
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

    private (List<(FetchKey Key, FetchResponse.PartitionData Data)> Results, long Bytes) Read(RequestContext context, List<FetchTarget> partitions, FetchRequest request)
    {
        var image = metadata.Image;
        var results = new List<(FetchKey, FetchResponse.PartitionData)>(partitions.Count);
        long total = 0;
        var budget = (long)request.MaxBytes;

        // A follower's fetch names its broker (ReplicaState from v15, ReplicaId before); consumers send -1.
        var replicaId = context.ApiVersion >= 15 ? request.ReplicaState.ReplicaId : request.ReplicaId;
        var replicaEpoch = context.ApiVersion >= 15 ? request.ReplicaState.ReplicaEpoch : -1;
        var wake = false;
        foreach (var (key, offset, maxBytes, currentLeaderEpoch, lastFetchedEpoch) in partitions)
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
            var (partition, error) = replicas.Leader(topicImage, key.Partition, currentLeaderEpoch);
            if (partition is null)
            {
                result.ErrorCode = (short)(byId && topicImage is null ? ErrorCode.UnknownTopicId : error);
                if (error == ErrorCode.NotLeaderOrFollower && context.ApiVersion >= 12 && topicImage!.Partitions.TryGetValue(key.Partition, out var known))
                {
                    result.CurrentLeader = new FetchResponse.LeaderIdAndEpoch { LeaderId = known.Leader, LeaderEpoch = known.LeaderEpoch };
                }

                continue;
            }

            var log = partition.Log;
            long readLimit;
            if (replicaId >= 0)
            {
                // A follower: its fetch offset is its log end. The leader checks the follower's log by epochs (a
                // divergence is answered with where to truncate, and no records), records its progress, and lets
                // it read up to the log end; the high watermark it may move wakes consumers and acks=all producers.
                var follower = partition.RecordFollowerFetch(replicaId, replicaEpoch, offset, lastFetchedEpoch, options.Time.GetUtcNow().ToUnixTimeMilliseconds());
                wake |= follower.HighWatermarkAdvanced;
                if (follower.Error != ErrorCode.None)
                {
                    result.ErrorCode = (short)follower.Error;
                    continue;
                }

                if (follower.Diverging is { } diverging)
                {
                    result.DivergingEpoch = new FetchResponse.EpochEndOffset { Epoch = diverging.Epoch, EndOffset = diverging.EndOffset };
                    (result.HighWatermark, result.LastStableOffset, result.LogStartOffset) = (partition.HighWatermark, Math.Min(log.LastStableOffset, partition.HighWatermark), log.LogStartOffset);
                    continue;
                }

                readLimit = log.LogEndOffset;
            }
            else
            {
                readLimit = -1;
            }

            var highWatermark = partition.HighWatermark;
            var lastStable = Math.Min(log.LastStableOffset, highWatermark);
            var readCommitted = request.IsolationLevel == 1;
            result.HighWatermark = highWatermark;
            result.LastStableOffset = lastStable;
            result.LogStartOffset = log.LogStartOffset;
            if (readLimit < 0)
            {
                // Consumers read what every in-sync replica holds; read_committed only up to the last stable offset.
                readLimit = readCommitted ? lastStable : highWatermark;
            }

            try
            {
                // read_committed stops at the last stable offset and names the aborted transactions in the range,
                // whose records the consumer then skips.
                var limit = (int)Math.Min(maxBytes, Math.Max(0, budget));
                var read = log.Read(offset, limit, readLimit, minOneBatch: total == 0);
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

        if (wake)
        {
            notifier.Notify();
        }

        return (results, total);
    }
}
