using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Osprey.Broker.Config;
using Osprey.Broker.Groups;
using Osprey.Broker.Producers;
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

    public int MaxTimeoutMs { get; init; } = 900_000;

    public int TimeoutCheckIntervalMs { get; init; } = 10_000;

    public long IdExpirationMs { get; init; } = 604_800_000;

    public bool VerifyPartitions { get; init; } = true;

    public static TransactionCoordinatorOptions From(BrokerConfig config) => new()
    {
        Partitions = config.GetInt("transaction.state.log.num.partitions"),
        SegmentBytes = config.GetInt("transaction.state.log.segment.bytes"),
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
/// fsynced before it is answered. Ending a transaction writes its COMMIT or ABORT marker to every partition it
/// touched — on this single node directly, the same markers WriteTxnMarkers carries between brokers — and only then
/// reports it complete. A transaction open past its timeout is aborted with a new epoch, which fences the producer.
/// </summary>
public sealed partial class TransactionCoordinator : InternalTopicCoordinator<TransactionShard>, IAsyncDisposable
{
    public const string TopicName = InternalTopics.TransactionLogTopic;

    /// <summary>The transaction.version feature level of KIP-890 part 2 (epoch bump per transaction, implicit adds).</summary>
    public const short TransactionVersion2 = 2;

    private readonly IMetadataQuorum _metadata;
    private readonly LogManager _logs;
    private readonly ProducerIdManager _producerIds;
    private readonly GroupCoordinator _groups;
    private readonly AppendNotifier _notifier;
    private readonly TimeProvider _time;
    private readonly ILogger<TransactionCoordinator> _logger;

    /// <summary>Producer id → its transactional id's metadata, for the produce path's verification (read without locks).</summary>
    private readonly ConcurrentDictionary<long, TransactionMetadata> _byProducerId = new();

    public TransactionCoordinator(
        IMetadataQuorum metadata, LogManager logs, TopicCreator creator, ProducerIdManager producerIds, GroupCoordinator groups, AppendNotifier notifier, BrokerOptions options, ILogger<TransactionCoordinator> logger)
        : this(metadata, logs, creator, producerIds, groups, notifier, options, TransactionCoordinatorOptions.From(options.Config), logger)
    {
    }

    private TransactionCoordinator(
        IMetadataQuorum metadata,
        LogManager logs,
        TopicCreator creator,
        ProducerIdManager producerIds,
        GroupCoordinator groups,
        AppendNotifier notifier,
        BrokerOptions options,
        TransactionCoordinatorOptions settings,
        ILogger<TransactionCoordinator> logger)
        : base(TopicName, metadata, logs, creator, settings.Partitions, settings.SegmentBytes, p => new TransactionShard(p))
    {
        _metadata = metadata;
        _logs = logs;
        _producerIds = producerIds;
        _groups = groups;
        _notifier = notifier;
        _time = options.Time;
        _logger = logger;
        Options = settings;
        LoadIfPresent();
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
    /// (NOT_ENOUGH_REPLICAS, retriable, while __transaction_state is still loading).
    /// </summary>
    public async ValueTask<ErrorCode> VerifyTransactionalWriteAsync(long producerId, short epoch, string topic, int partition, bool implicitAdd, CancellationToken cancellationToken)
    {
        if (!Options.VerifyPartitions && !implicitAdd)
        {
            return ErrorCode.None;
        }

        if (!_byProducerId.TryGetValue(producerId, out var txn) || txn.ProducerId != producerId)
        {
            // While __transaction_state is still loading the producer may be one it does not know yet: a retriable
            // error (Kafka answers NOT_ENOUGH_REPLICAS when it cannot verify), not a fatal one.
            return Loading is not null && !AllLoaded ? ErrorCode.NotEnoughReplicas : ErrorCode.InvalidProducerIdMapping;
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
        return error == ErrorCode.ProducerFenced ? ErrorCode.InvalidProducerEpoch : error;
    }

    protected override async Task LoadAsync(TransactionShard shard)
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

        // A transaction the broker stopped in the middle of ending is ended now, as it was decided.
        foreach (var txn in shard.Transactions.Values.Where(t => t.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort).ToList())
        {
            await CompleteAsync(shard, txn, txn.State == TransactionState.PrepareCommit, bumpEpoch: false, Stop.Token).ConfigureAwait(false);
        }
    }

    protected override void OnLoaded() => StartPeriodic(_time, Options.TimeoutCheckIntervalMs, AbortTimedOutAsync);

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
        await _logs.AppendAsync(shard.Log!, builder.Build(), durable: true).ConfigureAwait(false);
        _byProducerId[txn.ProducerId] = txn;
    }

    /// <summary>
    /// Ends a transaction as decided: records the decision (PrepareCommit/PrepareAbort), writes the markers to every
    /// partition, then records it complete with no partitions. With <paramref name="bumpEpoch"/> (transaction
    /// version 2) the decision carries the next epoch, the markers are written with it, and when the epoch has run
    /// out the producer id moves on to a new one at epoch 0 once the markers are written. A decision found on disk
    /// (after a failure or a restart) is carried out as it was recorded.
    /// </summary>
    private async Task CompleteAsync(TransactionShard shard, TransactionMetadata txn, bool commit, bool bumpEpoch, CancellationToken cancellationToken)
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

        await WriteMarkersAsync(txn.ProducerId, txn.ProducerEpoch, commit, txn.Partitions, cancellationToken).ConfigureAwait(false);
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
    }

    /// <summary>
    /// Fences the producer of an open transaction (a new incarnation, or its timeout) and aborts the transaction:
    /// PrepareEpochFence with the epoch bumped, then the abort under that epoch. A transaction version 2 producer
    /// that then retries its abort with the old epoch is answered as done.
    /// </summary>
    private async Task FenceAndAbortAsync(TransactionShard shard, TransactionMetadata txn, CancellationToken cancellationToken)
    {
        if (txn.State == TransactionState.Ongoing)
        {
            Transition(txn, TransactionState.PrepareEpochFence);
            txn.PreviousProducerId = txn.ProducerId;
            txn.PreviousProducerEpoch = txn.ProducerEpoch;
            await BumpEpochAsync(txn, cancellationToken).ConfigureAwait(false);
        }

        await CompleteAsync(shard, txn, commit: txn.State == TransactionState.PrepareCommit, bumpEpoch: false, cancellationToken).ConfigureAwait(false);
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
    /// Writes a transaction marker to each partition (the path WriteTxnMarkers serves too): user partitions get the
    /// control batch directly; __consumer_offsets partitions through the group coordinator, which applies or drops
    /// the transaction's offsets. A partition whose topic is gone is skipped.
    /// </summary>
    public async Task WriteMarkersAsync(long producerId, short epoch, bool commit, IEnumerable<(string Topic, int Partition)> partitions, CancellationToken cancellationToken)
    {
        var marker = ControlRecords.CreateEndTransactionMarkerBatch(new(commit ? ControlRecordType.Commit : ControlRecordType.Abort, 0), producerId, epoch, NowMs);
        foreach (var (topic, partition) in partitions.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition))
        {
            if (topic == GroupCoordinator.TopicName)
            {
                await _groups.WriteTransactionMarkerAsync(partition, producerId, epoch, commit, cancellationToken).ConfigureAwait(false);
            }
            else if (_logs.Get(topic, partition) is { } log)
            {
                await _logs.AppendAsync(log, marker, durable: true, origin: AppendOrigin.Coordinator).ConfigureAwait(false);
            }
        }

        _notifier.Notify();
    }

    /// <summary>
    /// Aborts transactions open past their timeout, bumping the epoch so that the producer is fenced, and forgets
    /// transactional ids idle past transactional.id.expiration.ms (every loaded shard, each under its lock).
    /// </summary>
    internal Task AbortTimedOutAsync() => ForEachLoadedShardAsync(AbortTimedOutAsync);

    private async Task AbortTimedOutAsync(TransactionShard shard)
    {
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
            await _logs.AppendAsync(shard.Log!, builder.Build(), durable: true).ConfigureAwait(false);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Aborting timed-out transactions failed")]
    private static partial void LogTimeoutFailed(ILogger logger, Exception exception);
}
