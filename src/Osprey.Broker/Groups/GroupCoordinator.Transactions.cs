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
        var entries = request.Topics.SelectMany(t => t.Partitions.Select(p => new OffsetToCommit(t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata))).ToList();
        var errors = await CommitAsync(request.GroupId, entries, partitionExists, shard => AdmitTxnCommit(shard, request), (request.ProducerId, request.ProducerEpoch), cancellationToken).ConfigureAwait(false);
        return TxnCommitResponse(request, errors);
    }

    /// <summary>The response to a TxnOffsetCommit: one error per partition, in the request's order.</summary>
    public static TxnOffsetCommitResponse TxnCommitResponse(TxnOffsetCommitRequest request, IReadOnlyList<ErrorCode> errors)
    {
        var i = 0;
        return new TxnOffsetCommitResponse
        {
            Topics = request.Topics.Select(t => new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
            {
                Name = t.Name,
                TopicId = t.TopicId,
                Partitions = t.Partitions.Select(p => new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)errors[i++] }).ToList(),
            }).ToList(),
        };
    }

    /// <summary>A member's transactional commit (v3+) must come from a current member, as a plain commit would.</summary>
    private static ErrorCode AdmitTxnCommit(CoordinatorShard shard, TxnOffsetCommitRequest request)
    {
        if (request.MemberId.Length == 0 && request.GenerationIdOrMemberEpoch < 0)
        {
            return ErrorCode.None;
        }

        return shard.ConsumerGroups.TryGetValue(request.GroupId, out var consumerGroup)
            ? CheckConsumerMember(consumerGroup, request.MemberId, request.GenerationIdOrMemberEpoch)
            : shard.Groups.TryGetValue(request.GroupId, out var classic) ? CheckMember(classic, request.MemberId, request.GroupInstanceId, request.GenerationIdOrMemberEpoch, out _) : ErrorCode.IllegalGeneration;
    }

    /// <summary>
    /// Writes a transaction's COMMIT or ABORT marker into a __consumer_offsets partition this broker coordinates and
    /// applies (or drops) the offsets the producer committed there inside the transaction. Else the error:
    /// COORDINATOR_LOAD_IN_PROGRESS while the shard loads here, NOT_LEADER_OR_FOLLOWER when another broker leads the
    /// partition, or the write's error.
    /// </summary>
    public async Task<ErrorCode> WriteTransactionMarkerAsync(int partition, long producerId, short producerEpoch, bool commit, CancellationToken cancellationToken)
    {
        var (shard, error) = ShardAt(partition);
        if (shard is null)
        {
            return error == ErrorCode.NotCoordinator ? ErrorCode.NotLeaderOrFollower : error;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!shard.Loaded)
            {
                return ErrorCode.NotLeaderOrFollower;
            }

            var marker = ControlRecords.CreateEndTransactionMarkerBatch(new(commit ? ControlRecordType.Commit : ControlRecordType.Abort, 0), producerId, producerEpoch, NowMs);
            try
            {
                await AppendAsync(shard, marker, AppendOrigin.Coordinator).ConfigureAwait(false);
            }
            catch (KafkaProtocolException e)
            {
                // The marker may be in the log and replicate later; the writer tries again, and a marker written twice does no harm.
                return e.ErrorCode == ErrorCode.NotCoordinator ? ErrorCode.NotLeaderOrFollower : e.ErrorCode;
            }

            CompletePending(shard, producerId, commit);
            return ErrorCode.None;
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
