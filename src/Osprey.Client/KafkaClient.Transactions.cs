using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Client;

/// <summary>A transactional id as the transaction coordinator reports it.</summary>
public sealed record TransactionInfo(
    string TransactionalId,
    string State,
    long ProducerId,
    short ProducerEpoch,
    int TimeoutMs,
    long StartTimeMs,
    IReadOnlyList<(string Topic, int Partition)> Partitions)
{
    /// <summary>Open longer than its timeout at <paramref name="nowMs"/>: the coordinator should have aborted it.</summary>
    public bool IsHanging(long nowMs) => State == "Ongoing" && StartTimeMs >= 0 && nowMs - StartTimeMs > TimeoutMs;
}

/// <summary>Transaction calls: list (ListTransactions on every broker) and describe (DescribeTransactions at the coordinator).</summary>
public sealed partial class KafkaClient
{
    public async Task<IReadOnlyList<(string TransactionalId, long ProducerId, string State)>> ListTransactionsAsync(CancellationToken cancellationToken)
    {
        var (cluster, _) = await MetadataAsync([], cancellationToken).ConfigureAwait(false);
        var result = new List<(string, long, string)>();
        foreach (var broker in cluster.Brokers)
        {
            var connection = await NodeAsync(broker.NodeId, cancellationToken).ConfigureAwait(false);
            var version = connection.VersionFor(ApiKey.ListTransactions, 1);
            var response = await CallAsync<ListTransactionsResponse>(connection, new ListTransactionsRequest(), version, cancellationToken).ConfigureAwait(false);
            KafkaException.ThrowIfError(response.ErrorCode, $"Listing the transactions of broker {broker.NodeId}");
            result.AddRange(response.TransactionStates.Select(t => (t.TransactionalId, t.ProducerId, t.TransactionState)));
        }

        return result;
    }

    public async Task<TransactionInfo> DescribeTransactionAsync(string transactionalId, CancellationToken cancellationToken)
    {
        var response = await GroupCallAsync<DescribeTransactionsResponse>(
            transactionalId,
            ApiKey.DescribeTransactions,
            0,
            _ => new DescribeTransactionsRequest { TransactionalIds = [transactionalId] },
            r => r.TransactionStates[0].ErrorCode,
            cancellationToken,
            keyType: 1).ConfigureAwait(false);
        var state = response.TransactionStates.Single();
        KafkaException.ThrowIfError(state.ErrorCode, $"Describing transactional id '{transactionalId}'", state.ErrorCode == (short)ErrorCode.TransactionalIdNotFound ? "no such transactional id" : null);
        return new TransactionInfo(
            state.TransactionalId,
            state.TransactionState,
            state.ProducerId,
            state.ProducerEpoch,
            state.TransactionTimeoutMs,
            state.TransactionStartTimeMs,
            state.Topics.SelectMany(t => t.Partitions.Select(p => (t.Topic, p))).ToList());
    }
}
