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

            if (txn.IsOpen && !await FenceAndAbortAsync(shard, txn, cancellationToken).ConfigureAwait(false))
            {
                // The new incarnation fences the old one: its open transaction is aborted under a new epoch. Until
                // every marker of that abort is written the producer waits (and retries), as with Kafka.
                return (ErrorCode.ConcurrentTransactions, -1, -1);
            }

            if (txn.ProducerEpoch >= short.MaxValue - 1)
            {
                _byProducerId.TryRemove(txn.ProducerId, out _);
                txn.ProducerId = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
                txn.ProducerEpoch = 0;
            }
            else
            {
                txn.ProducerEpoch++;
            }

            Transition(txn, TransactionState.Empty);
            txn.Partitions = [];
            txn.StartMs = -1;
            txn.TimeoutMs = timeoutMs;
            txn.PreviousProducerId = -1;
            txn.PreviousProducerEpoch = -1;
            await WriteAsync(shard, txn).ConfigureAwait(false);
            return (ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
        }
        catch (KafkaProtocolException e) when (IsWriteFailure(e))
        {
            return (e.ErrorCode, -1, -1);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>
    /// Adds partitions to the producer's transaction, opening one if none is open: sent by the producer
    /// (<see cref="TxnAddMode.Explicit"/>) or, with transaction version 2, implied by its first transactional write
    /// to a partition (<see cref="TxnAddMode.Implicit"/>, which also marks the transaction as version 2). With
    /// <see cref="TxnAddMode.VerifyOnly"/> nothing is added: each partition is checked to be in the open transaction
    /// already (INVALID_TXN_STATE otherwise).
    /// </summary>
    public async Task<Dictionary<(string Topic, int Partition), ErrorCode>> AddPartitionsAsync(
        string transactionalId, long producerId, short producerEpoch, IReadOnlyCollection<(string Topic, int Partition)> partitions, TxnAddMode mode, CancellationToken cancellationToken)
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

            if (mode == TxnAddMode.VerifyOnly)
            {
                return partitions.Distinct().ToDictionary(p => p, p => txn!.State == TransactionState.Ongoing && txn.Partitions.Contains(p) ? ErrorCode.None : ErrorCode.InvalidTxnState);
            }

            if (txn!.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort or TransactionState.PrepareEpochFence)
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
                Transition(txn, TransactionState.Ongoing);
                txn.StartMs = NowMs;
                txn.ClientTransactionVersion = mode == TxnAddMode.Implicit ? TransactionVersion2 : (short)0;
            }

            txn.Partitions = txn.Partitions.Union(partitions);
            await WriteAsync(shard, txn).ConfigureAwait(false);
            return All(ErrorCode.None);
        }
        catch (KafkaProtocolException e) when (IsWriteFailure(e))
        {
            return All(e.ErrorCode);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>
    /// Adds the group's __consumer_offsets partition to the transaction (AddOffsetsToTxn, or implied by a
    /// transaction version 2 TxnOffsetCommit), or verifies that it is in it.
    /// </summary>
    public async Task<ErrorCode> AddOffsetsAsync(string transactionalId, long producerId, short producerEpoch, string groupId, TxnAddMode mode, CancellationToken cancellationToken)
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

        var partition = _groups.PartitionFor(groupId);
        if (mode != TxnAddMode.Explicit && CoordinatorOf(transactionalId) is var coordinator && coordinator != _nodeId)
        {
            // A TxnOffsetCommit reached the group's coordinator; the transaction's is another broker.
            var error = coordinator < 0 ? ErrorCode.CoordinatorNotAvailable
                : await VerifyRemotelyAsync(coordinator, transactionalId, producerId, producerEpoch, GroupCoordinator.TopicName, partition, mode == TxnAddMode.Implicit, cancellationToken).ConfigureAwait(false);
            return error is ErrorCode.NotCoordinator or ErrorCode.CoordinatorLoadInProgress or ErrorCode.ConcurrentTransactions ? ErrorCode.CoordinatorNotAvailable : error;
        }

        var result = await AddPartitionsAsync(transactionalId, producerId, producerEpoch, [(GroupCoordinator.TopicName, partition)], mode, cancellationToken).ConfigureAwait(false);
        return result.Values.Single();
    }

    /// <summary>
    /// Commits or aborts the producer's transaction, answering with the producer id and epoch to use next.
    /// <para>Transaction version 1 (EndTxn before v5): the epoch stays. A retry of the same decision after it
    /// completed is answered as done; the opposite decision, or committing with no transaction open, is
    /// INVALID_TXN_STATE; aborting with none open is done.</para>
    /// <para>Transaction version 2 (EndTxn v5+, KIP-890): ending bumps the epoch (a new producer id at epoch 0 when
    /// the epoch runs out) and the markers carry the bumped epoch, so a late write or EndTxn of the ended
    /// transaction is fenced instead of joining the next one. A retry carries the previous epoch: the same decision
    /// is answered as done with the current id and epoch, another is INVALID_TXN_STATE. An abort with no
    /// transaction open also bumps the epoch (the producer may not know whether a write of its added a partition).</para>
    /// </summary>
    public async Task<EndTxnResult> EndTxnAsync(string transactionalId, long producerId, short producerEpoch, bool commit, short transactionVersion, CancellationToken cancellationToken)
    {
        var (shard, error) = await ShardAsync(transactionalId, cancellationToken).ConfigureAwait(false);
        if (shard is null)
        {
            return new(error, -1, -1);
        }

        await shard.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            shard.Transactions.TryGetValue(transactionalId, out var txn);
            var v2 = transactionVersion >= TransactionVersion2;
            var retryOfEnded = v2 && txn is not null && txn.PreviousProducerId == producerId && txn.PreviousProducerEpoch == producerEpoch
                && (txn.ProducerId != producerId || txn.ProducerEpoch != producerEpoch)
                && txn.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort or TransactionState.CompleteCommit or TransactionState.CompleteAbort;
            var check = retryOfEnded ? ErrorCode.None : CheckProducer(txn, producerId, producerEpoch);
            if (check != ErrorCode.None)
            {
                return new(check, -1, -1);
            }

            var decided = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort;
            var done = commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
            if (retryOfEnded)
            {
                if (txn!.State == decided)
                {
                    await CompleteAsync(shard, txn, commit, bumpEpoch: false, cancellationToken).ConfigureAwait(false); // left unfinished by a failure
                }

                return new(txn.State == done ? ErrorCode.None : ErrorCode.InvalidTxnState, txn.ProducerId, txn.ProducerEpoch);
            }

            switch (txn!.State)
            {
                case TransactionState.Ongoing:
                    txn.ClientTransactionVersion = v2 ? TransactionVersion2 : (short)0;
                    if (!v2)
                    {
                        txn.PreviousProducerId = -1;
                        txn.PreviousProducerEpoch = -1;
                    }

                    await CompleteAsync(shard, txn, commit, bumpEpoch: v2, cancellationToken).ConfigureAwait(false);
                    return new(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
                case TransactionState.PrepareCommit or TransactionState.PrepareAbort when !v2 && txn.State == decided:
                    await CompleteAsync(shard, txn, commit, bumpEpoch: false, cancellationToken).ConfigureAwait(false); // left unfinished by a failure
                    return new(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
                case TransactionState.CompleteCommit or TransactionState.CompleteAbort when !v2 && txn.State == done:
                    return new(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch); // a retry of what is done
                case TransactionState.Empty when !v2 && !commit:
                    return new(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch); // nothing was sent: nothing to abort
                case TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort when v2 && !commit:
                    txn.ClientTransactionVersion = TransactionVersion2;
                    txn.StartMs = -1;
                    await CompleteAsync(shard, txn, commit: false, bumpEpoch: true, cancellationToken).ConfigureAwait(false);
                    return new(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
                default:
                    return new(ErrorCode.InvalidTxnState, -1, -1);
            }
        }
        catch (KafkaProtocolException e) when (IsWriteFailure(e))
        {
            return new(e.ErrorCode, -1, -1);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>A write of the shard that failed in a way the client retries (its coordinator moved, or its replicas did not confirm).</summary>
    private static bool IsWriteFailure(KafkaProtocolException e) => e.ErrorCode is ErrorCode.NotCoordinator or ErrorCode.CoordinatorNotAvailable;

    private static ErrorCode CheckProducer(TransactionMetadata? txn, long producerId, short producerEpoch)
    {
        if (txn is null || txn.ProducerId != producerId)
        {
            return ErrorCode.InvalidProducerIdMapping;
        }

        return producerEpoch == txn.ProducerEpoch ? ErrorCode.None : ErrorCode.ProducerFenced;
    }

    /// <summary>
    /// The state of every transactional id this broker coordinates (for ListTransactions, DescribeTransactions and the
    /// CLI; on a cluster, clients ask every broker). COORDINATOR_LOAD_IN_PROGRESS while a shard it leads is loading.
    /// </summary>
    public async Task<(ErrorCode Error, List<TransactionMetadata> Transactions)> ListAsync(CancellationToken cancellationToken)
    {
        if (!AllLoaded && _metadata.Image.Topic(TopicName) is not null)
        {
            return (ErrorCode.CoordinatorLoadInProgress, []);
        }

        var result = new List<TransactionMetadata>();
        foreach (var shard in Shards.Where(s => s.Loaded))
        {

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
