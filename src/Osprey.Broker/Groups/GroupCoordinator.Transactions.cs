using System.Text;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Groups;

/// <summary>
/// Offsets committed inside transactions (TxnOffsetCommit): written to __consumer_offsets as a transactional batch
/// of the producer, held as pending, and applied or dropped when the transaction coordinator writes its COMMIT or
/// ABORT marker into the same partition. OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT meanwhile.
/// </summary>
public sealed partial class GroupCoordinator
{
    public async Task<TxnOffsetCommitResponse> TxnCommitOffsetsAsync(TxnOffsetCommitRequest request, Func<string, int, bool> partitionExists, CancellationToken cancellationToken)
    {
        var response = new TxnOffsetCommitResponse
        {
            Topics = request.Topics.Select(t => new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
            {
                Name = t.Name,
                TopicId = t.TopicId,
                Partitions = t.Partitions.Select(p => new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }).ToList(),
            }).ToList(),
        };
        void FailAll(ErrorCode error)
        {
            foreach (var partition in response.Topics.SelectMany(t => t.Partitions))
            {
                partition.ErrorCode = (short)error;
            }
        }

        var (shard, error) = await ShardAsync(request.GroupId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            FailAll(error);
            return response;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // A member's commit (v3+) must come from a current member, as a plain commit would.
            if (request.MemberId.Length > 0 || request.GenerationIdOrMemberEpoch >= 0)
            {
                error = shard.ConsumerGroups.TryGetValue(request.GroupId, out var consumerGroup)
                    ? CheckConsumerMember(consumerGroup, request.MemberId, request.GenerationIdOrMemberEpoch)
                    : shard.Groups.TryGetValue(request.GroupId, out var classic) ? CheckMember(classic, request.MemberId, request.GroupInstanceId, request.GenerationIdOrMemberEpoch, out _) : ErrorCode.IllegalGeneration;
                if (error != ErrorCode.None)
                {
                    FailAll(error);
                    return response;
                }
            }

            var now = NowMs;
            using var builder = new RecordBatchBuilder { ProducerId = request.ProducerId, ProducerEpoch = request.ProducerEpoch, IsTransactional = true };
            var accepted = new List<((string, string, int) Key, CommittedOffset Offset)>();
            for (var t = 0; t < request.Topics.Count; t++)
            {
                var topic = request.Topics[t];
                for (var p = 0; p < topic.Partitions.Count; p++)
                {
                    var partition = topic.Partitions[p];
                    var result = response.Topics[t].Partitions[p];
                    if (!partitionExists(topic.Name, partition.PartitionIndex))
                    {
                        result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    }
                    else if (partition.CommittedMetadata is { } metadata && Encoding.UTF8.GetByteCount(metadata) > Options.MaxMetadataBytes)
                    {
                        result.ErrorCode = (short)ErrorCode.OffsetMetadataTooLarge;
                    }
                    else
                    {
                        var offset = new CommittedOffset(partition.CommittedOffset, partition.CommittedLeaderEpoch, partition.CommittedMetadata, now);
                        builder.Append(now, GroupRecords.OffsetKey(request.GroupId, topic.Name, partition.PartitionIndex), GroupRecords.OffsetValue(offset));
                        accepted.Add(((request.GroupId, topic.Name, partition.PartitionIndex), offset));
                    }
                }
            }

            if (accepted.Count == 0)
            {
                return response;
            }

            try
            {
                await _logs.AppendAsync(shard.Log!, builder.Build(), durable: true, origin: AppendOrigin.Coordinator).ConfigureAwait(false);
            }
            catch (Exception e) when (e is KafkaStorageException or KafkaProtocolException)
            {
                FailAll(e is KafkaProtocolException { ErrorCode: ErrorCode.InvalidProducerEpoch } ? ErrorCode.ProducerFenced : ErrorCode.CoordinatorNotAvailable);
                return response;
            }

            var pending = shard.PendingOf(request.ProducerId);
            foreach (var (key, offset) in accepted)
            {
                pending[key] = offset;
            }

            return response;
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>
    /// Writes a transaction's COMMIT or ABORT marker into a __consumer_offsets partition and applies (or drops)
    /// the offsets the producer committed there inside the transaction.
    /// </summary>
    public async Task WriteTransactionMarkerAsync(int partition, long producerId, short producerEpoch, bool commit, CancellationToken cancellationToken)
    {
        if (await EnsureStartedAsync(cancellationToken).ConfigureAwait(false) != ErrorCode.None || partition >= Shards.Length)
        {
            throw new KafkaProtocolException(ErrorCode.CoordinatorNotAvailable, $"{TopicName}-{partition} is not available.");
        }

        var shard = Shards[partition];
        while (!shard.Loaded)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var marker = ControlRecords.CreateEndTransactionMarkerBatch(new(commit ? ControlRecordType.Commit : ControlRecordType.Abort, 0), producerId, producerEpoch, NowMs);
            await _logs.AppendAsync(shard.Log!, marker, durable: true, origin: AppendOrigin.Coordinator).ConfigureAwait(false);
            CompletePending(shard, producerId, commit);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    private static void CompletePending(CoordinatorShard shard, long producerId, bool commit)
    {
        if (!shard.PendingTxnOffsets.Remove(producerId, out var pending) || !commit)
        {
            return;
        }

        foreach (var ((group, topic, partition), offset) in pending)
        {
            if (offset is null)
            {
                shard.Offsets.GetValueOrDefault(group)?.Remove((topic, partition));
            }
            else
            {
                shard.OffsetsOf(group)[(topic, partition)] = offset;
            }
        }
    }

    /// <summary>True for a COMMIT marker, false for an ABORT one, null for other control batches.</summary>
    private static bool? ControlMarker(RecordBatch batch)
    {
        foreach (var record in batch.GetRecords())
        {
            return ControlRecords.ParseKey(record).Type switch
            {
                ControlRecordType.Commit => true,
                ControlRecordType.Abort => false,
                _ => null,
            };
        }

        return null;
    }
}
