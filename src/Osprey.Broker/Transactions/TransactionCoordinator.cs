using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Osprey.Broker.Config;
using Osprey.Broker.Control;
using Osprey.Broker.Groups;
using Osprey.Broker.Producers;
using Osprey.Broker.Replication;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Transactions;

/// <summary>The transaction coordinator's settings (Kafka's transaction.* broker settings).</summary>
public sealed record TransactionCoordinatorOptions
{
    public int Partitions { get; init; } = 50;

    public int SegmentBytes { get; init; } = 104_857_600;

    public short ReplicationFactor { get; init; } = 3;

    public int MinInsyncReplicas { get; init; } = 2;

    public int WriteTimeoutMs { get; init; } = 30_000;

    public int MaxTimeoutMs { get; init; } = 900_000;

    public int TimeoutCheckIntervalMs { get; init; } = 10_000;

    public long IdExpirationMs { get; init; } = 604_800_000;

    public bool VerifyPartitions { get; init; } = true;

    /// <summary>__transaction_state as Kafka makes it: transaction.state.log.min.isr; writes wait request.timeout.ms.</summary>
    public InternalTopicSettings TopicSettings => new(Partitions, SegmentBytes, ReplicationFactor, MinInsyncReplicas, WriteTimeoutMs);

    public static TransactionCoordinatorOptions From(BrokerConfig config) => new()
    {
        Partitions = config.GetInt("transaction.state.log.num.partitions"),
        SegmentBytes = config.GetInt("transaction.state.log.segment.bytes"),
        ReplicationFactor = (short)config.GetInt("transaction.state.log.replication.factor"),
        MinInsyncReplicas = config.GetInt("transaction.state.log.min.isr"),
        WriteTimeoutMs = config.GetInt("request.timeout.ms"),
        MaxTimeoutMs = config.GetInt("transaction.max.timeout.ms"),
        TimeoutCheckIntervalMs = config.GetInt("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
        IdExpirationMs = config.GetLong("transactional.id.expiration.ms"),
        VerifyPartitions = config.GetBool("transaction.partition.verification.enable"),
    };
}

/// <summary>How <see cref="TransactionCoordinator.AddPartitionsAsync"/> treats the partitions it is given.</summary>
public enum TxnAddMode
{
    /// <summary>AddPartitionsToTxn or AddOffsetsToTxn from the producer (transaction version 1).</summary>
    Explicit,

    /// <summary>AddPartitionsToTxn v4+ with VerifyOnly, and a transaction version 1 write: the partitions must be in the open transaction.</summary>
    VerifyOnly,

    /// <summary>A transaction version 2 write (Produce v12+, TxnOffsetCommit v5+) adds its partition itself.</summary>
    Implicit,
}

/// <summary>EndTxn's answer: the error, and the producer id and epoch the producer goes on with.</summary>
public readonly record struct EndTxnResult(ErrorCode Error, long ProducerId, short ProducerEpoch);

/// <summary>One __transaction_state partition: the transactional ids that hash to it. Changed under <see cref="Lock"/>.</summary>
public sealed class TransactionShard(int partition) : InternalTopicShard(partition)
{
    public Dictionary<string, TransactionMetadata> Transactions { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// The transaction coordinator: transactional ids, their producer ids and epochs, and the state of their
/// transactions, kept as records in the compacted internal topic __transaction_state (a transactional id lives in
/// partition abs(hash(id)) % transaction.state.log.num.partitions, as in Kafka). Every state change is written and
/// fsynced (and held by every in-sync replica) before it is answered; a transactional id is served by the leader of
/// its partition. Ending a transaction writes its COMMIT or ABORT marker to every partition it touched — directly
/// where this broker leads the partition, with WriteTxnMarkers to the leader elsewhere — and only then records it
/// complete; markers that cannot be written yet are tried again until they are. A transaction open past its timeout
/// is aborted with a new epoch, which fences the producer.
/// </summary>
public sealed partial class TransactionCoordinator : InternalTopicCoordinator<TransactionShard>, IAsyncDisposable
{
    public const string TopicName = InternalTopics.TransactionLogTopic;

    /// <summary>The transaction.version feature level of KIP-890 part 2 (epoch bump per transaction, implicit adds).</summary>
    public const short TransactionVersion2 = 2;

    /// <summary>How long ending a transaction tries to write its markers before it answers and leaves the rest to the periodic retry.</summary>
    private static readonly TimeSpan MarkerTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long one marker waits for the in-sync replicas (within a WriteTxnMarkers request's time).</summary>
    private static readonly TimeSpan MarkerReplicationTimeout = TimeSpan.FromSeconds(3);

    private readonly IMetadataQuorum _metadata;
    private readonly InternalTopicServices _services;
    private readonly ReplicaManager _replicas;
    private readonly InterBrokerClient _brokers;
    private readonly int _nodeId;
    private readonly ProducerIdManager _producerIds;
    private readonly GroupCoordinator _groups;
    private readonly TimeProvider _time;
    private readonly ILogger<TransactionCoordinator> _logger;

    /// <summary>Producer id → its transactional id's metadata, for the produce path's verification (read without locks).</summary>
    private readonly ConcurrentDictionary<long, TransactionMetadata> _byProducerId = new();

    public TransactionCoordinator(
        InternalTopicServices services, InterBrokerClient brokers, ProducerIdManager producerIds, GroupCoordinator groups, ILogger<TransactionCoordinator> logger)
        : base(TopicName, services, TransactionCoordinatorOptions.From(services.Options.Config).TopicSettings, p => new TransactionShard(p), logger)
    {
        _services = services;
        _metadata = services.Metadata;
        _replicas = services.Replicas;
        _brokers = brokers;
        _nodeId = services.Options.NodeId;
        _producerIds = producerIds;
        _groups = groups;
        _time = services.Options.Time;
        _logger = logger;
        Options = TransactionCoordinatorOptions.From(services.Options.Config);
        StartFollowingLeadership(Options.TimeoutCheckIntervalMs, AbortTimedOutAsync);
    }

    public TransactionCoordinatorOptions Options { get; }

    internal long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The shard of a transactional id, ready to use, or the error to answer with.</summary>
    internal Task<(TransactionShard? Shard, ErrorCode Error)> ShardAsync(string? transactionalId, CancellationToken cancellationToken) =>
        ShardForAsync(transactionalId, ErrorCode.InvalidRequest, cancellationToken);

    /// <summary>
    /// Test hooks: called at every state change (transaction, from, to), and after a decision is on disk but
    /// before any marker is written (where a test stops the broker as if it crashed).
    /// </summary>
    internal Action<TransactionMetadata, TransactionState, TransactionState>? Transitioned { get; set; }

    /// <inheritdoc cref="Transitioned"/>
    internal Func<TransactionMetadata, Task>? BeforeMarkers { get; set; }

    /// <summary>
    /// Whether a transactional batch from <paramref name="producerId"/> at <paramref name="epoch"/> may be written
    /// to the partition. With transaction version 1 its transaction must be open and include the partition
    /// (KIP-890's verification; INVALID_TXN_STATE otherwise, skipped when transaction.partition.verification.enable
    /// is off). With <paramref name="implicitAdd"/> (transaction version 2) the write adds the partition, opening a
    /// transaction if none is. An older epoch is INVALID_PRODUCER_EPOCH, an unknown producer INVALID_PRODUCER_ID_MAPPING
    /// (NOT_ENOUGH_REPLICAS, retriable, while __transaction_state is still loading). When another broker coordinates
    /// <paramref name="transactionalId"/> it is asked with AddPartitionsToTxn (v4 VerifyOnly, or v5 adding the
    /// partition), unless <paramref name="log"/> already has the producer's transaction open at that epoch.
    /// </summary>
    public async ValueTask<ErrorCode> VerifyTransactionalWriteAsync(
        string? transactionalId, long producerId, short epoch, PartitionLog log, bool implicitAdd, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (!Options.VerifyPartitions && !implicitAdd)
        {
            return ErrorCode.None;
        }

        var (topic, partition) = (log.Topic, log.Partition);
        if (!string.IsNullOrEmpty(transactionalId) && CoordinatorOf(transactionalId) is var coordinator && coordinator != _nodeId)
        {
            return log.HasOpenTransaction(producerId, epoch) ? ErrorCode.None
                : coordinator < 0 ? ErrorCode.NotEnoughReplicas
                : ForProducer(await VerifyRemotelyAsync(coordinator, transactionalId, producerId, epoch, topic, partition, implicitAdd, cancellationToken).ConfigureAwait(false));
        }

        if (!_byProducerId.TryGetValue(producerId, out var txn) || txn.ProducerId != producerId)
        {
            // While __transaction_state is still loading the producer may be one it does not know yet: a retriable
            // error (Kafka answers NOT_ENOUGH_REPLICAS when it cannot verify), not a fatal one.
            return !AllLoaded ? ErrorCode.NotEnoughReplicas : ErrorCode.InvalidProducerIdMapping;
        }

        if (epoch < txn.ProducerEpoch)
        {
            return ErrorCode.InvalidProducerEpoch;
        }

        if (txn.State == TransactionState.Ongoing && epoch == txn.ProducerEpoch && txn.Partitions.Contains((topic, partition)))
        {
            return ErrorCode.None; // the common case, without the lock
        }

        var mode = implicitAdd ? TxnAddMode.Implicit : TxnAddMode.VerifyOnly;
        var error = (await AddPartitionsAsync(txn.TransactionalId, producerId, epoch, [(topic, partition)], mode, cancellationToken).ConfigureAwait(false)).Values.Single();
        return ForProducer(error);
    }

    /// <summary>
    /// Asks the coordinator on broker <paramref name="coordinator"/> to verify (or, with transaction version 2, add)
    /// the partition, as Kafka's partition leaders do; a coordinator that cannot be asked is COORDINATOR_NOT_AVAILABLE.
    /// </summary>
    private async Task<ErrorCode> VerifyRemotelyAsync(
        int coordinator, string transactionalId, long producerId, short epoch, string topic, int partition, bool implicitAdd, CancellationToken cancellationToken)
    {
        var request = new AddPartitionsToTxnRequest
        {
            Transactions =
            [
                new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
                {
                    TransactionalId = transactionalId,
                    ProducerId = producerId,
                    ProducerEpoch = epoch,
                    VerifyOnly = !implicitAdd,
                    Topics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = topic, Partitions = [partition] }],
                },
            ],
        };
        try
        {
            var response = await _brokers.SendAsync<AddPartitionsToTxnResponse>(coordinator, request, implicitAdd ? (short)5 : (short)4, cancellationToken).ConfigureAwait(false);
            var error = response.ErrorCode != 0 ? (ErrorCode)response.ErrorCode
                : response.ResultsByTransaction.SelectMany(t => t.TopicResults).SelectMany(t => t.ResultsByPartition).Select(p => (ErrorCode)p.PartitionErrorCode).FirstOrDefault(ErrorCode.UnknownServerError);
            return error;
        }
        catch (Client.KafkaException)
        {
            return ErrorCode.CoordinatorNotAvailable;
        }
    }

    /// <summary>A coordinator's answer as the producer's write gets it: the coordinator's own troubles are NOT_ENOUGH_REPLICAS (retriable), as in Kafka.</summary>
    private static ErrorCode ForProducer(ErrorCode error) => error switch
    {
        ErrorCode.ProducerFenced => ErrorCode.InvalidProducerEpoch,
        ErrorCode.NotCoordinator or ErrorCode.CoordinatorLoadInProgress or ErrorCode.CoordinatorNotAvailable or ErrorCode.ConcurrentTransactions => ErrorCode.NotEnoughReplicas,
        _ => error,
    };

    protected override Task LoadAsync(TransactionShard shard)
    {
        InternalTopics.Replay(shard.Log!, (batch, record) =>
        {
            try
            {
                Apply(shard, record.Key, record.Value, record.IsValueNull);
            }
            catch (KafkaProtocolException e)
            {
                LogSkippedRecord(_logger, shard.Partition, batch.BaseOffset, e.Message);
            }
        }, skipped: (batch, why) => LogSkippedRecord(_logger, shard.Partition, batch.BaseOffset, why));
        return Task.CompletedTask;
    }

    /// <summary>A transaction its previous coordinator stopped in the middle of ending is ended now, as it was decided.</summary>
    protected override void OnShardLoaded(TransactionShard shard) => _ = RunLockedAsync(shard, () => CompleteDecidedAsync(shard));

    private async Task CompleteDecidedAsync(TransactionShard shard)
    {
        foreach (var txn in shard.Transactions.Values.Where(t => t.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort).ToList())
        {
            await CompleteAsync(shard, txn, txn.State == TransactionState.PrepareCommit, bumpEpoch: false, Stop.Token).ConfigureAwait(false);
        }
    }

    /// <summary>Another broker coordinates the shard's transactional ids now: the produce path stops finding them here.</summary>
    protected override Task UnloadAsync(TransactionShard shard)
    {
        foreach (var txn in shard.Transactions.Values)
        {
            _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
        }

        return Task.CompletedTask;
    }

    protected override void OnTimerFailed(Exception exception) => LogTimeoutFailed(_logger, exception);

    protected override void OnCreateFailed(string message) => LogCreateFailed(_logger, message);

    private void Apply(TransactionShard shard, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool valueIsNull)
    {
        if (key.Length < 2 || BinaryPrimitives.ReadInt16BigEndian(key) != 0)
        {
            return; // not a record this broker knows
        }

        var id = MessageCodec.Deserialize(new TransactionLogKey(), key[2..].ToArray(), 0).TransactionalId;
        if (valueIsNull)
        {
            if (shard.Transactions.Remove(id, out var gone))
            {
                _byProducerId.TryRemove(gone.ProducerId, out _);
            }

            return;
        }

        if (value.Length < 2)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"The {TopicName} value of {id} is too short.");
        }

        var version = BinaryPrimitives.ReadInt16BigEndian(value);
        if (version is < 0 or > 1)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"The {TopicName} value of {id} has unknown version {version}.");
        }

        var v = MessageCodec.Deserialize(new TransactionLogValue(), value[2..].ToArray(), version);
        if (!shard.Transactions.TryGetValue(id, out var txn))
        {
            txn = new TransactionMetadata(id);
            shard.Transactions[id] = txn;
        }

        if (txn.ProducerId != v.ProducerId)
        {
            _byProducerId.TryRemove(txn.ProducerId, out _);
        }

        txn.ProducerId = v.ProducerId;
        txn.ProducerEpoch = v.ProducerEpoch;
        txn.TimeoutMs = v.TransactionTimeoutMs;
        txn.State = Enum.IsDefined((TransactionState)v.TransactionStatus) ? (TransactionState)v.TransactionStatus : TransactionState.Empty;
        txn.Partitions = ImmutableHashSet.CreateRange((v.TransactionPartitions ?? []).SelectMany(p => p.PartitionIds.Select(i => (p.Topic, i))));
        txn.LastUpdateMs = v.TransactionLastUpdateTimestampMs;
        txn.StartMs = v.TransactionStartTimestampMs;
        txn.ClientTransactionVersion = v.ClientTransactionVersion;
        txn.PreviousProducerId = v.PreviousProducerId;
        txn.PreviousProducerEpoch = v.PreviousProducerEpoch;
        txn.NextProducerId = v.NextProducerId;
        _byProducerId[txn.ProducerId] = txn;
    }

    /// <summary>Writes the transaction's state to its shard's partition and waits until it is on disk.</summary>
    private async Task WriteAsync(TransactionShard shard, TransactionMetadata txn)
    {
        txn.LastUpdateMs = NowMs;
        using var builder = new RecordBatchBuilder();
        var key = MessageCodec.SerializeVersioned(new TransactionLogKey { TransactionalId = txn.TransactionalId }, 0);
        var value = MessageCodec.SerializeVersioned(
            new TransactionLogValue
            {
                ProducerId = txn.ProducerId,
                ProducerEpoch = txn.ProducerEpoch,
                TransactionTimeoutMs = txn.TimeoutMs,
                TransactionStatus = (sbyte)txn.State,
                TransactionPartitions = txn.Partitions.GroupBy(p => p.Topic)
                    .Select(g => new TransactionLogValue.PartitionsSchema { Topic = g.Key, PartitionIds = g.Select(p => p.Partition).Order().ToList() })
                    .ToList(),
                TransactionLastUpdateTimestampMs = txn.LastUpdateMs,
                TransactionStartTimestampMs = txn.StartMs,
                ClientTransactionVersion = txn.ClientTransactionVersion,
                PreviousProducerId = txn.PreviousProducerId,
                PreviousProducerEpoch = txn.PreviousProducerEpoch,
                NextProducerId = txn.NextProducerId,
            },
            1);
        builder.Append(txn.LastUpdateMs, key, value);
        await AppendAsync(shard, builder.Build(), AppendOrigin.Client).ConfigureAwait(false);
        _byProducerId[txn.ProducerId] = txn;
    }

    /// <summary>
    /// Ends a transaction as decided: records the decision (PrepareCommit/PrepareAbort), writes the markers to every
    /// partition, then records it complete with no partitions. With <paramref name="bumpEpoch"/> (transaction
    /// version 2) the decision carries the next epoch, the markers are written with it, and when the epoch has run
    /// out the producer id moves on to a new one at epoch 0 once the markers are written. A decision found on disk
    /// (after a failure, a restart or a move of the coordinator) is carried out as it was recorded. False when some
    /// markers could not be written yet: the transaction stays decided (the producer's next step meets
    /// CONCURRENT_TRANSACTIONS) and the periodic check tries again.
    /// </summary>
    private async Task<bool> CompleteAsync(TransactionShard shard, TransactionMetadata txn, bool commit, bool bumpEpoch, CancellationToken cancellationToken)
    {
        if (txn.State is not (TransactionState.PrepareCommit or TransactionState.PrepareAbort))
        {
            if (bumpEpoch)
            {
                txn.PreviousProducerId = txn.ProducerId;
                txn.PreviousProducerEpoch = txn.ProducerEpoch;
                await BumpEpochAsync(txn, cancellationToken).ConfigureAwait(false);
            }

            Transition(txn, commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort);
            await WriteAsync(shard, txn).ConfigureAwait(false);
        }

        if (BeforeMarkers is { } hook)
        {
            await hook(txn).ConfigureAwait(false);
        }

        if (!await WriteMarkersAsync(shard, txn, commit, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        if (txn.NextProducerId >= 0)
        {
            _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
            txn.ProducerId = txn.NextProducerId;
            txn.ProducerEpoch = 0;
            txn.NextProducerId = -1;
        }

        Transition(txn, commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort);
        txn.Partitions = [];
        txn.StartMs = -1;
        await WriteAsync(shard, txn).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Fences the producer of an open transaction (a new incarnation, or its timeout) and aborts the transaction:
    /// PrepareEpochFence with the epoch bumped, then the abort under that epoch. A transaction version 2 producer
    /// that then retries its abort with the old epoch is answered as done.
    /// </summary>
    private async Task<bool> FenceAndAbortAsync(TransactionShard shard, TransactionMetadata txn, CancellationToken cancellationToken)
    {
        if (txn.State == TransactionState.Ongoing)
        {
            Transition(txn, TransactionState.PrepareEpochFence);
            txn.PreviousProducerId = txn.ProducerId;
            txn.PreviousProducerEpoch = txn.ProducerEpoch;
            await BumpEpochAsync(txn, cancellationToken).ConfigureAwait(false);
        }

        return await CompleteAsync(shard, txn, commit: txn.State == TransactionState.PrepareCommit, bumpEpoch: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Moves the epoch on by one; when that reaches the last epoch, the producer id that follows is reserved (taken once the markers are written).</summary>
    private async Task BumpEpochAsync(TransactionMetadata txn, CancellationToken cancellationToken)
    {
        if (txn.ProducerEpoch >= short.MaxValue - 1 && txn.NextProducerId < 0)
        {
            txn.NextProducerId = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
        }

        if (txn.ProducerEpoch < short.MaxValue)
        {
            txn.ProducerEpoch++;
        }
    }

    /// <summary>Changes the transaction's state, refusing (as a bug) a change Kafka's state machine does not allow.</summary>
    private void Transition(TransactionMetadata txn, TransactionState to)
    {
        var from = txn.State;
        var allowed = to switch
        {
            TransactionState.Empty => from is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort,
            TransactionState.Ongoing => from is TransactionState.Ongoing or TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort,
            TransactionState.PrepareCommit => from is TransactionState.Ongoing,
            TransactionState.PrepareAbort => from is TransactionState.Ongoing or TransactionState.PrepareEpochFence
                or TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort, // the last three: a version 2 abort with nothing open
            TransactionState.CompleteCommit => from is TransactionState.PrepareCommit,
            TransactionState.CompleteAbort => from is TransactionState.PrepareAbort,
            TransactionState.PrepareEpochFence => from is TransactionState.Ongoing,
            _ => from is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort,
        };
        if (!allowed)
        {
            throw new InvalidOperationException($"Transaction {txn.TransactionalId}: {TransactionMetadata.StateName(from)} cannot become {TransactionMetadata.StateName(to)}.");
        }

        txn.State = to;
        Transitioned?.Invoke(txn, from, to);
    }

    /// <summary>
    /// Writes the transaction's marker to each of its partitions, wherever the partition's leader is: here directly,
    /// elsewhere with WriteTxnMarkers to the leader (one request per broker). A partition without a leader, or whose
    /// leader refuses (it may not know yet that it leads), is tried again with backoff, for up to
    /// <see cref="MarkerTimeout"/> and while this broker still coordinates the shard; a partition whose topic is gone
    /// is skipped. True when every marker is written.
    /// </summary>
    private async Task<bool> WriteMarkersAsync(TransactionShard shard, TransactionMetadata txn, bool commit, CancellationToken cancellationToken)
    {
        var (producerId, epoch, coordinatorEpoch) = (txn.ProducerId, txn.ProducerEpoch, shard.LeaderEpoch);
        var pending = txn.Partitions.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition).ToList();
        var deadline = Time.GetUtcNow() + MarkerTimeout;
        var backoff = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            var image = _metadata.Image;
            var failed = new List<(string Topic, int Partition)>();
            var remote = new Dictionary<int, List<(string Topic, int Partition)>>();
            foreach (var (topic, partition) in pending)
            {
                if (image.Topic(topic)?.Partitions.GetValueOrDefault(partition) is not { } state)
                {
                    continue; // deleted with its topic: nothing to end there
                }

                if (state.Leader == _nodeId)
                {
                    if (await WriteLocalMarkerAsync(topic, partition, producerId, epoch, commit, coordinatorEpoch, cancellationToken).ConfigureAwait(false) != ErrorCode.None)
                    {
                        failed.Add((topic, partition));
                    }
                }
                else if (state.Leader < 0)
                {
                    failed.Add((topic, partition));
                }
                else
                {
                    (remote.TryGetValue(state.Leader, out var list) ? list : remote[state.Leader] = []).Add((topic, partition));
                }
            }

            foreach (var (leader, partitions) in remote)
            {
                failed.AddRange(await WriteRemoteMarkersAsync(leader, partitions, producerId, epoch, commit, coordinatorEpoch, txn.ClientTransactionVersion, cancellationToken).ConfigureAwait(false));
            }

            if (failed.Count == 0)
            {
                return true;
            }

            if (Time.GetUtcNow() >= deadline || !shard.Loaded)
            {
                LogMarkersPending(_logger, txn.TransactionalId, producerId, epoch, failed.Count, string.Join(", ", failed.Take(5).Select(p => $"{p.Topic}-{p.Partition}")));
                return false;
            }

            pending = failed;
            await Task.Delay(backoff, Time, cancellationToken).ConfigureAwait(false);
            backoff = TimeSpan.FromMilliseconds(Math.Min(500, backoff.TotalMilliseconds * 2));
        }
    }

    /// <summary>Sends one broker the markers of its partitions; the partitions it did not write come back.</summary>
    private async Task<IEnumerable<(string Topic, int Partition)>> WriteRemoteMarkersAsync(
        int leader, List<(string Topic, int Partition)> partitions, long producerId, short epoch, bool commit, int coordinatorEpoch, short transactionVersion, CancellationToken cancellationToken)
    {
        var request = new WriteTxnMarkersRequest
        {
            Markers =
            [
                new WriteTxnMarkersRequest.WritableTxnMarker
                {
                    ProducerId = producerId,
                    ProducerEpoch = epoch,
                    TransactionResult = commit,
                    CoordinatorEpoch = coordinatorEpoch,
                    TransactionVersion = (sbyte)transactionVersion,
                    Topics = [.. partitions.GroupBy(p => p.Topic).Select(g => new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = g.Key, PartitionIndexes = [.. g.Select(p => p.Partition)] })],
                },
            ],
        };
        try
        {
            var response = await _brokers.SendAsync<WriteTxnMarkersResponse>(leader, request, 2, cancellationToken).ConfigureAwait(false);
            var written = response.Markers.SelectMany(m => m.Topics).SelectMany(t => t.Partitions.Where(p => p.ErrorCode == 0).Select(p => (t.Name, p.PartitionIndex))).ToHashSet();
            return partitions.Where(p => !written.Contains(p));
        }
        catch (Client.KafkaException)
        {
            return partitions;
        }
    }

    /// <summary>
    /// Writes a transaction marker into a partition this broker leads (what WriteTxnMarkers asks of a leader), and
    /// waits until the in-sync replicas have it: user partitions get the control batch; __consumer_offsets partitions
    /// get it through the group coordinator, which applies or drops the transaction's offsets. Else the error
    /// (NOT_LEADER_OR_FOLLOWER when another broker leads it, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, ...).
    /// </summary>
    public async Task<ErrorCode> WriteLocalMarkerAsync(string topic, int partition, long producerId, short epoch, bool commit, int coordinatorEpoch, CancellationToken cancellationToken)
    {
        if (topic == GroupCoordinator.TopicName)
        {
            return await _groups.WriteTransactionMarkerAsync(partition, producerId, epoch, commit, cancellationToken).ConfigureAwait(false);
        }

        var (replica, error) = _replicas.Leader(_metadata.Image.Topic(topic), partition);
        if (replica is null)
        {
            return error;
        }

        var marker = ControlRecords.CreateEndTransactionMarkerBatch(new(commit ? ControlRecordType.Commit : ControlRecordType.Abort, coordinatorEpoch), producerId, epoch, NowMs);
        try
        {
            return (await _services.AppendAsLeaderAsync(replica, marker, AppendOrigin.Coordinator, replica.AppendEpoch, MarkerReplicationTimeout, cancellationToken).ConfigureAwait(false)).Error;
        }
        catch (KafkaProtocolException e)
        {
            return e.ErrorCode;
        }
        catch (KafkaStorageException e)
        {
            return e.ErrorCode;
        }
    }

    /// <summary>
    /// Aborts transactions open past their timeout, bumping the epoch so that the producer is fenced, and forgets
    /// transactional ids idle past transactional.id.expiration.ms (every loaded shard, each under its lock).
    /// </summary>
    internal Task AbortTimedOutAsync() => ForEachLoadedShardAsync(AbortTimedOutAsync);

    private async Task AbortTimedOutAsync(TransactionShard shard)
    {
        // Markers that could not all be written when the transaction ended are tried again.
        await CompleteDecidedAsync(shard).ConfigureAwait(false);
        var now = NowMs;
        foreach (var txn in shard.Transactions.Values.Where(t => t.State == TransactionState.Ongoing && t.StartMs >= 0 && now - t.StartMs > t.TimeoutMs).ToList())
        {
            LogTimedOut(_logger, txn.TransactionalId, txn.ProducerId, txn.ProducerEpoch, txn.TimeoutMs);
            await FenceAndAbortAsync(shard, txn, Stop.Token).ConfigureAwait(false);
        }

        // transactional.id.expiration.ms: an id with no transaction open and no activity for that long is
        // forgotten (a tombstone in __transaction_state); its next InitProducerId starts afresh.
        foreach (var txn in shard.Transactions.Values.Where(t => !t.IsOpen && now - t.LastUpdateMs >= Options.IdExpirationMs).ToList())
        {
            using var builder = new RecordBatchBuilder();
            builder.Append(now, MessageCodec.SerializeVersioned(new TransactionLogKey { TransactionalId = txn.TransactionalId }, 0), null);
            await AppendAsync(shard, builder.Build(), AppendOrigin.Client).ConfigureAwait(false);
            shard.Transactions.Remove(txn.TransactionalId);
            _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
            Transition(txn, TransactionState.Dead);
        }
    }

    public async ValueTask DisposeAsync() => await StopShardsAsync().ConfigureAwait(false);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot create __transaction_state: {Message}")]
    private static partial void LogCreateFailed(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped an unreadable record in __transaction_state-{Partition} (batch at offset {Offset}): {Reason}")]
    private static partial void LogSkippedRecord(ILogger logger, int partition, long offset, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Aborting the transaction of {TransactionalId} (producer {ProducerId}, epoch {Epoch}): open longer than its timeout of {TimeoutMs} ms")]
    private static partial void LogTimedOut(ILogger logger, string transactionalId, long producerId, short epoch, int timeoutMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Transaction of {TransactionalId} (producer {ProducerId}, epoch {Epoch}): {Count} markers not written yet ({Partitions}); tried again later")]
    private static partial void LogMarkersPending(ILogger logger, string transactionalId, long producerId, short epoch, int count, string partitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Aborting timed-out transactions failed")]
    private static partial void LogTimeoutFailed(ILogger logger, Exception exception);
}
