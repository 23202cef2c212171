// DescribeTransactions (key 65), version 0.
//   Each transactional id's state (Kafka's names), timeout, start time, producer id and epoch, and the partitions
//   of its open transaction. An unknown id: TRANSACTIONAL_ID_NOT_FOUND.
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeTransactionsHandler(TransactionCoordinator transactions) : RequestHandler<DescribeTransactionsRequest, DescribeTransactionsResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeTransactions;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override async ValueTask<DescribeTransactionsResponse> HandleAsync(RequestContext context, DescribeTransactionsRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeTransactionsResponse();
        foreach (var id in request.TransactionalIds)
        {
            var (error, txn) = await transactions.DescribeAsync(id, cancellationToken).ConfigureAwait(false);
            response.TransactionStates.Add(new DescribeTransactionsResponse.TransactionStateData
            {
                ErrorCode = (short)error,
                TransactionalId = id,
                TransactionState = txn is null ? "" : TransactionMetadata.StateName(txn.State),
                TransactionTimeoutMs = txn?.TimeoutMs ?? 0,
                TransactionStartTimeMs = txn?.StartMs ?? -1,
                ProducerId = txn?.ProducerId ?? -1,
                ProducerEpoch = txn?.ProducerEpoch ?? -1,
                Topics = txn is null ? [] : txn.Partitions.GroupBy(p => p.Topic).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => new DescribeTransactionsResponse.TopicData { Topic = g.Key, Partitions = g.Select(p => p.Partition).Order().ToList() }).ToList(),
            });
        }

        return response;
    }
}
