// Produce (key 0), versions 3-13.
//   acks must be -1 (all: answered once the batches are fsynced, unless durability is turned off, and every
//   in-sync replica has them: the high watermark passed them), 0 (no response) or 1 (after the append); anything
//   else is INVALID_REQUIRED_ACKS for every partition. Only the partition's leader appends: elsewhere
//   NOT_LEADER_OR_FOLLOWER, with the leader and its endpoint (v10+) so the client moves without a metadata round.
//   acks=all answers REQUEST_TIMED_OUT when the in-sync replicas do not catch up within the request's timeout, and
//   NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below min.insync.replicas meanwhile.
//   Partitions of one request are appended concurrently, so their fsyncs share group-commit rounds. Waiting
//   fetches are woken once all of the request's partitions are appended, before the fsync (records are readable
//   up to the log end at once, as on a single Kafka replica); only the producer's answer waits for the disk.
//   Each partition carries exactly one record batch (as Kafka requires from v3; more is INVALID_RECORD).
//   A topic whose compression.type is a codec (not "producer") stores batches re-compressed with it.
//   Idempotent batches (producer id and sequence set) are checked against the partition's producer state: a retry
//   of a batch already written is answered with its original offsets and not written again; a gap in sequence is
//   OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch INVALID_PRODUCER_EPOCH. A transactional batch is accepted only
//   when its producer's transaction is open and includes the partition (KIP-890; INVALID_TXN_STATE otherwise,
//   INVALID_PRODUCER_ID_MAPPING for an unknown producer), unless transaction.partition.verification.enable is off.
//   When another broker coordinates the transactional id, the leader asks it (AddPartitionsToTxn v4/v5) before the
//   producer's first write of the transaction to the partition; NOT_ENOUGH_REPLICAS (retriable) when it cannot.
//   v12+ is transaction version 2: a transactional batch adds its partition to the transaction (opening one).
//   Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (v13 by id: UNKNOWN_TOPIC_ID), CORRUPT_MESSAGE,
//   MESSAGE_TOO_LARGE (a batch over max.message.bytes), RECORD_LIST_TOO_LARGE (over segment.bytes),
//   INVALID_TIMESTAMP (outside message.timestamp.before/after.max.ms), NOT_ENOUGH_REPLICAS (acks=all while the
//   ISR is smaller than min.insync.replicas), UNSUPPORTED_FOR_MESSAGE_FORMAT (magic 0/1), INVALID_RECORD,
//   KAFKA_STORAGE_ERROR. v13 names topics by id.
using System.Runtime.InteropServices;
using Osprey.Broker.Control;
using Osprey.Broker.Replication;
using Osprey.Broker.Transactions;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class ProduceHandler(IMetadataQuorum metadata, ReplicaManager replicas, LogManager logs, AppendNotifier notifier, TransactionCoordinator transactions, BrokerOptions options) : RequestHandler<ProduceRequest, ProduceResponse>
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

        // Waiting fetches are woken once, as soon as every partition of the request has been appended (or
        // refused), not after the fsync: like Kafka's high watermark on a single replica, appended records are
        // readable at once, and acks=all only holds the producer's answer back until they are durable.
        //
        // The connection's produce requests append in the order they arrived, as Kafka handles them one at a time:
        // a request whose transaction check has to wait holds back the later ones until it has appended.
        var turn = context.Connection.TakeAppendTurn();
        var pending = request.TopicData.Sum(t => t.PartitionData.Count);
        void Appended()
        {
            if (Interlocked.Decrement(ref pending) == 0)
            {
                turn.Complete();
                notifier.Notify();
            }
        }

        if (pending == 0)
        {
            turn.Complete();
        }

        try
        {
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
                        Appended();
                        continue;
                    }

                    if (topic?.Name == Groups.GroupCoordinator.TopicName)
                    {
                        result.ErrorCode = (short)ErrorCode.InvalidTopicException;
                        result.ErrorMessage = $"Cannot produce to the internal topic {topic.Name}.";
                        Appended();
                        continue;
                    }

                    var (partition, error) = replicas.Leader(topic, partitionData.Index);
                    if (partition is null)
                    {
                        result.ErrorCode = (short)(byId && topic is null ? ErrorCode.UnknownTopicId : error);
                        if (error == ErrorCode.NotLeaderOrFollower && context.ApiVersion >= 10 && topic!.Partitions.TryGetValue(partitionData.Index, out var known))
                        {
                            result.CurrentLeader = new ProduceResponse.LeaderIdAndEpoch { LeaderId = known.Leader, LeaderEpoch = known.LeaderEpoch };
                            AddEndpoint(response, image, known.Leader);
                        }

                        Appended();
                        continue;
                    }

                    appends.Add(AppendAsync(partition, partitionData.Records, request.TransactionalId, request.Acks == -1, TimeSpan.FromMilliseconds(Math.Max(0, request.TimeoutMs)), context.ApiVersion >= 12, turn.Previous, result, Appended, cancellationToken));
                }
            }
        }
        catch
        {
            turn.Complete();
            throw;
        }

        await Task.WhenAll(appends).ConfigureAwait(false);
        return response;
    }

    /// <summary>The leader's endpoint at the listener clients use, so a client told NOT_LEADER_OR_FOLLOWER can go there.</summary>
    private void AddEndpoint(ProduceResponse response, ClusterImage image, int leaderId)
    {
        if (leaderId >= 0 && response.NodeEndpoints.All(n => n.NodeId != leaderId)
            && ClusterView.Brokers(image, options.ListenerName).FirstOrDefault(b => b.Broker.Id == leaderId) is { Broker: not null } found)
        {
            response.NodeEndpoints.Add(new ProduceResponse.NodeEndpoint { NodeId = leaderId, Host = found.Endpoint.Host, Port = found.Endpoint.Port, Rack = found.Broker.Rack });
        }
    }

    private async Task AppendAsync(
        Partition partition,
        ReadOnlyMemory<byte>? records,
        string? transactionalId,
        bool durable,
        TimeSpan timeout,
        bool transactionVersion2,
        Task earlierAppends,
        ProduceResponse.PartitionProduceResponse result,
        Action appended,
        CancellationToken cancellationToken)
    {
        var signalled = false;
        var log = partition.Log;
        try
        {
            if (records is not { Length: > 0 } bytes)
            {
                throw new KafkaProtocolException(ErrorCode.CorruptMessage, "A produce request must carry at least one record batch.");
            }

            var config = log.Config;
            if (durable && !partition.HasEnoughReplicas(config.MinInsyncReplicas))
            {
                throw new KafkaProtocolException(
                    ErrorCode.NotEnoughReplicas,
                    $"{log.Topic}-{log.Partition} has fewer in-sync replicas than min.insync.replicas ({config.MinInsyncReplicas}), which acks=all requires.");
            }

            var first = RecordBatchHeader.Parse(bytes.Span);
            if (first.TotalSize != bytes.Length)
            {
                throw new KafkaProtocolException(ErrorCode.InvalidRecord, $"{log.Topic}-{log.Partition}: a produce request may carry only one record batch per partition.");
            }

            if (first.IsTransactional && !first.IsControlBatch
                && await transactions.VerifyTransactionalWriteAsync(transactionalId, first.ProducerId, first.ProducerEpoch, log, transactionVersion2, cancellationToken).ConfigureAwait(false) is var verified and not ErrorCode.None)
            {
                throw new KafkaProtocolException(verified, $"{log.Topic}-{log.Partition}: producer {first.ProducerId} (epoch {first.ProducerEpoch}) has no open transaction that includes this partition.");
            }

            if (config.CompressionType is { } codec && !first.IsControlBatch && first.Compression != codec)
            {
                if (first.TotalSize > config.MaxMessageBytes + RecordBatchHeader.LogOverhead)
                {
                    throw new KafkaProtocolException(ErrorCode.MessageTooLarge, $"{log.Topic}-{log.Partition}: a record batch of {first.TotalSize} bytes is larger than max.message.bytes ({config.MaxMessageBytes}).");
                }

                RecordBatch.Parse(bytes.Span).EnsureValidCrc();
                bytes = RecordBatchRecompression.Recompress(bytes.Span, codec);
            }

            if (!earlierAppends.IsCompleted)
            {
                await earlierAppends.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            // The records are a slice of this request's own frame buffer (or a recompressed copy): offsets are
            // assigned in place, without copying the batch first.
            var written = log.AppendInPlace(MemoryMarshal.AsMemory(bytes).Span, AppendOrigin.Client, partition.AppendEpoch);
            partition.OnAppended();
            signalled = true;
            appended();
            await logs.WhenDurable(log, written, durable).ConfigureAwait(false);
            if (durable)
            {
                // Every in-sync replica must have the records too (at once when this broker is the whole ISR).
                var replicated = await partition.WaitForReplicationAsync(written.LastOffset, config.MinInsyncReplicas, timeout, options.Time, cancellationToken).ConfigureAwait(false);
                if (replicated != ErrorCode.None)
                {
                    throw new KafkaProtocolException(replicated, $"{log.Topic}-{log.Partition}: the in-sync replicas did not all confirm offset {written.LastOffset} ({replicated.KafkaName()}).");
                }
            }

            result.BaseOffset = written.FirstOffset;
            result.LogAppendTimeMs = written.LogAppendTime;
            result.LogStartOffset = written.LogStartOffset;
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
        finally
        {
            if (!signalled)
            {
                appended();
            }
        }
    }
}
