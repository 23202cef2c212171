using System.Collections.Immutable;

namespace Osprey.Broker.Transactions;

/// <summary>A transaction's state, with Kafka's ids (as written to __transaction_state and reported by DescribeTransactions).</summary>
public enum TransactionState : sbyte
{
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

/// <summary>What the coordinator knows of one transactional id. Changed only under its shard's lock.</summary>
public sealed class TransactionMetadata(string transactionalId)
{
    public string TransactionalId { get; } = transactionalId;

    public long ProducerId { get; set; } = -1;

    public short ProducerEpoch { get; set; } = -1;

    public int TimeoutMs { get; set; }

    public TransactionState State { get; set; } = TransactionState.Empty;

    /// <summary>The partitions of the open transaction (replaced, never changed in place: the produce path reads it without the lock).</summary>
    public ImmutableHashSet<(string Topic, int Partition)> Partitions { get; set; } = [];

    /// <summary>When the open transaction started (ms), or -1.</summary>
    public long StartMs { get; set; } = -1;

    public long LastUpdateMs { get; set; }

    /// <summary>
    /// The transaction version the producer ends its transactions with: 2 (KIP-890 part 2) when it sends EndTxn
    /// v5+, which bumps the epoch at the end of every transaction; 0 before.
    /// </summary>
    public short ClientTransactionVersion { get; set; }

    /// <summary>
    /// Transaction version 2: the producer id and epoch the last ended transaction was written with, which a retry
    /// of its EndTxn carries (the epoch is one below the bumped one, or the id is the one before an epoch overflow);
    /// else -1.
    /// </summary>
    public long PreviousProducerId { get; set; } = -1;

    /// <inheritdoc cref="PreviousProducerId"/>
    public short PreviousProducerEpoch { get; set; } = -1;

    /// <summary>While a transaction version 2 transaction ends with its epoch exhausted: the producer id that follows; else -1.</summary>
    public long NextProducerId { get; set; } = -1;

    public static string StateName(TransactionState state) => state switch
    {
        TransactionState.Empty => "Empty",
        TransactionState.Ongoing => "Ongoing",
        TransactionState.PrepareCommit => "PrepareCommit",
        TransactionState.PrepareAbort => "PrepareAbort",
        TransactionState.CompleteCommit => "CompleteCommit",
        TransactionState.CompleteAbort => "CompleteAbort",
        TransactionState.Dead => "Dead",
        _ => "PrepareEpochFence",
    };

    public bool IsOpen => State is TransactionState.Ongoing or TransactionState.PrepareCommit or TransactionState.PrepareAbort;
}
