using Osprey.Broker.Groups;
using Osprey.Protocol;

namespace Osprey.Broker.Transactions;

/// <summary>What producers and operators ask of the transaction coordinator.</summary>
public sealed partial class TransactionCoordinator
{
    /// <summary>
    /// InitProducerId with a transactional id: a new id gets a producer id at epoch 0; a known one gets its epoch
    /// bumped, which fences any older producer with the same id, and an open transaction is aborted first. A
    /// producer recovering from an error (v3+) names its current id and epoch, which must match.
    /// </summary>
    public async Task<(ErrorCode Error, long ProducerId, short Epoch)> InitProducerIdAsync(
        string transactionalId, int timeoutMs, long producerId, short producerEpoch, CancellationToken cancellationToken)
    {
        if (timeoutMs <= 0 || timeoutMs > Options.MaxTimeoutMs)
        {
            return (ErrorCode.InvalidTransactionTimeout, -1, -1);
        }

        var (shard, error) = await ShardAsync(transactionalId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return (error == ErrorCode.InvalidRequest ? ErrorCode.InvalidRequest : error, -1, -1);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!shard.Transactions.TryGetValue(transactionalId, out var txn))
            {
                txn = new TransactionMetadata(transactionalId) { ProducerId = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false), ProducerEpoch = 0, TimeoutMs = timeoutMs };
                shard.Transactions[transactionalId] = txn;
                await WriteAsync(shard, txn).ConfigureAwait(false);
                return (ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
            }

            if (producerId >= 0 && (producerId != txn.ProducerId || producerEpoch != txn.ProducerEpoch))
            {
                return (ErrorCode.ProducerFenced, -1, -1);
            }

            if (txn.IsOpen)
            {
                // The new incarnation fences the old one: its open transaction is aborted under the new epoch.
                BumpEpoch(txn);
                await CompleteAsync(shard, txn, commit: false, cancellationToken).ConfigureAwait(false);
            }

            if (txn.ProducerEpoch >= short.MaxValue - 1)
            {
                _byProducerId.TryRemove(txn.ProducerId, out _);
                txn.ProducerId = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
                txn.ProducerEpoch = 0;
            }
            else
            {
                BumpEpoch(txn);
            }

            txn.State = TransactionState.Empty;
            txn.Partitions = [];
            txn.StartMs = -1;
            txn.TimeoutMs = timeoutMs;
            await WriteAsync(shard, txn).ConfigureAwait(false);
            return (ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>
    /// Adds partitions to the producer's transaction (opening it). With <paramref name="verifyOnly"/> nothing is
    /// added: each partition is checked to be in the open transaction already (INVALID_TXN_STATE otherwise).
    /// </summary>
    public async Task<Dictionary<(string Topic, int Partition), ErrorCode>> AddPartitionsAsync(
        string transactionalId, long producerId, short producerEpoch, IReadOnlyCollection<(string Topic, int Partition)> partitions, bool verifyOnly, CancellationToken cancellationToken)
    {
        Dictionary<(string, int), ErrorCode> All(ErrorCode error) => partitions.Distinct().ToDictionary(p => p, _ => error);
        var (shard, error) = await ShardAsync(transactionalId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return All(error);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            shard.Transactions.TryGetValue(transactionalId, out var txn);
            var check = CheckProducer(txn, producerId, producerEpoch);
            if (check != ErrorCode.None)
            {
                return All(check);
            }

            if (verifyOnly)
            {
                return partitions.Distinct().ToDictionary(p => p, p => txn!.State == TransactionState.Ongoing && txn.Partitions.Contains(p) ? ErrorCode.None : ErrorCode.InvalidTxnState);
            }

            if (txn!.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
            {
                return All(ErrorCode.ConcurrentTransactions);
            }

            var image = _metadata.Image;
            var unknown = partitions.Where(p => p.Topic != GroupCoordinator.TopicName && image.Topic(p.Topic)?.Partitions.ContainsKey(p.Partition) != true).ToHashSet();
            if (unknown.Count > 0)
            {
                return partitions.Distinct().ToDictionary(p => p, p => unknown.Contains(p) ? ErrorCode.UnknownTopicOrPartition : ErrorCode.OperationNotAttempted);
            }

            if (txn.State == TransactionState.Ongoing && partitions.All(txn.Partitions.Contains))
            {
                return All(ErrorCode.None); // a retry, or partitions already added: nothing to write
            }

            if (txn.State != TransactionState.Ongoing)
            {
                txn.State = TransactionState.Ongoing;
                txn.StartMs = NowMs;
            }

            txn.Partitions = txn.Partitions.Union(partitions);
            await WriteAsync(shard, txn).ConfigureAwait(false);
            return All(ErrorCode.None);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>Adds the group's __consumer_offsets partition to the transaction, for TxnOffsetCommit.</summary>
    public async Task<ErrorCode> AddOffsetsAsync(string transactionalId, long producerId, short producerEpoch, string groupId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(groupId))
        {
            return ErrorCode.InvalidGroupId;
        }

        var started = await _groups.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        if (started != ErrorCode.None)
        {
            return started;
        }

        var result = await AddPartitionsAsync(transactionalId, producerId, producerEpoch, [(GroupCoordinator.TopicName, _groups.PartitionFor(groupId))], verifyOnly: false, cancellationToken).ConfigureAwait(false);
        return result.Values.Single();
    }

    /// <summary>
    /// Commits or aborts the producer's transaction. A retry of the same decision after it completed is answered
    /// as done; the opposite decision, or ending a transaction that is not open, is INVALID_TXN_STATE.
    /// </summary>
    public async Task<ErrorCode> EndTxnAsync(string transactionalId, long producerId, short producerEpoch, bool commit, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(transactionalId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return error;
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            shard.Transactions.TryGetValue(transactionalId, out var txn);
            var check = CheckProducer(txn, producerId, producerEpoch);
            if (check != ErrorCode.None)
            {
                return check;
            }

            switch (txn!.State)
            {
                case TransactionState.Ongoing or TransactionState.PrepareCommit or TransactionState.PrepareAbort:
                    if ((txn.State == TransactionState.PrepareCommit && !commit) || (txn.State == TransactionState.PrepareAbort && commit))
                    {
                        return ErrorCode.InvalidTxnState;
                    }

                    await CompleteAsync(shard, txn, commit, cancellationToken).ConfigureAwait(false);
                    return ErrorCode.None;
                case TransactionState.CompleteCommit when commit:
                case TransactionState.CompleteAbort when !commit:
                    return ErrorCode.None; // a retry of what is done
                case TransactionState.Empty when !commit:
                    return ErrorCode.None; // nothing was sent: nothing to abort
                default:
                    return ErrorCode.InvalidTxnState;
            }
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    private static ErrorCode CheckProducer(TransactionMetadata? txn, long producerId, short producerEpoch)
    {
        if (txn is null || txn.ProducerId != producerId)
        {
            return ErrorCode.InvalidProducerIdMapping;
        }

        return producerEpoch == txn.ProducerEpoch ? ErrorCode.None : ErrorCode.ProducerFenced;
    }

    /// <summary>Every transactional id's state (for ListTransactions, DescribeTransactions and the CLI).</summary>
    public async Task<(ErrorCode Error, List<TransactionMetadata> Transactions)> ListAsync(CancellationToken cancellationToken)
    {
        if (Loading is null)
        {
            return (ErrorCode.None, []);
        }

        var result = new List<TransactionMetadata>();
        foreach (var shard in Shards)
        {
            if (!shard.Loaded)
            {
                return (ErrorCode.CoordinatorLoadInProgress, []);
            }

            await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                result.AddRange(shard.Transactions.Values);
            }
            finally
            {
                shard.Lock.Release();
            }
        }

        return (ErrorCode.None, result);
    }

    /// <summary>One transactional id's state, or the error (TRANSACTIONAL_ID_NOT_FOUND for an unknown one).</summary>
    public async Task<(ErrorCode Error, TransactionMetadata? Transaction)> DescribeAsync(string transactionalId, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(transactionalId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return (error, null);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return shard.Transactions.TryGetValue(transactionalId, out var txn) ? (ErrorCode.None, txn) : (ErrorCode.TransactionalIdNotFound, null);
        }
        finally
        {
            shard.Lock.Release();
        }
    }
}
