// AddPartitionsToTxn (key 24), versions 0-5.
//   Adds partitions to a producer's transaction, opening it. v0-3: one transaction, from its producer. v4+: several
//   transactions at once (as brokers send them), each optionally VerifyOnly: the partitions must already be in
//   the open transaction (INVALID_TXN_STATE otherwise). Errors per partition: INVALID_PRODUCER_ID_MAPPING,
//   PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2), CONCURRENT_TRANSACTIONS,
//   UNKNOWN_TOPIC_OR_PARTITION (the others then OPERATION_NOT_ATTEMPTED), COORDINATOR_LOAD_IN_PROGRESS.
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AddPartitionsToTxnHandler(TransactionCoordinator transactions) : RequestHandler<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>
{
    public override ApiKey ApiKey => ApiKey.AddPartitionsToTxn;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<AddPartitionsToTxnResponse> HandleAsync(RequestContext context, AddPartitionsToTxnRequest request, CancellationToken cancellationToken)
    {
        var response = new AddPartitionsToTxnResponse();
        if (context.ApiVersion < 4)
        {
            var results = await AddAsync(request.V3AndBelowTransactionalId, request.V3AndBelowProducerId, request.V3AndBelowProducerEpoch, request.V3AndBelowTopics, verifyOnly: false, context.ApiVersion, cancellationToken).ConfigureAwait(false);
            response.ResultsByTopicV3AndBelow = results;
            return response;
        }

        foreach (var txn in request.Transactions)
        {
            response.ResultsByTransaction.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnResult
            {
                TransactionalId = txn.TransactionalId,
                TopicResults = await AddAsync(txn.TransactionalId, txn.ProducerId, txn.ProducerEpoch, txn.Topics, txn.VerifyOnly, context.ApiVersion, cancellationToken).ConfigureAwait(false),
            });
        }

        return response;
    }

    private async Task<List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult>> AddAsync(
        string transactionalId, long producerId, short epoch, List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics, bool verifyOnly, short version, CancellationToken cancellationToken)
    {
        var partitions = topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p))).ToList();
        var errors = await transactions.AddPartitionsAsync(transactionalId, producerId, epoch, partitions, verifyOnly ? TxnAddMode.VerifyOnly : TxnAddMode.Explicit, cancellationToken).ConfigureAwait(false);
        return topics.GroupBy(t => t.Name).Select(t => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        {
            Name = t.Key,
            ResultsByPartition = t.SelectMany(x => x.Partitions).Distinct().Select(p => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult
            {
                PartitionIndex = p,
                PartitionErrorCode = (short)Compatible(errors[(t.Key, p)], version),
            }).ToList(),
        }).ToList();
    }

    /// <summary>PRODUCER_FENCED is known to clients from v2; older ones get INVALID_PRODUCER_EPOCH.</summary>
    internal static ErrorCode Compatible(ErrorCode error, short version) =>
        error == ErrorCode.ProducerFenced && version < 2 ? ErrorCode.InvalidProducerEpoch : error;
}
