// EndTxn (key 26), versions 0-5.
//   Commits or aborts the producer's transaction: the decision is recorded, COMMIT or ABORT markers are written to
//   every partition of the transaction (and the transaction's offsets applied or dropped), and only then is the
//   answer sent. A retry of a completed decision succeeds; the opposite decision or no open transaction:
//   INVALID_TXN_STATE. v5+ is transaction version 2 (KIP-890): ending bumps the epoch (or moves to a new producer
//   id when it runs out) and the answer carries the producer id and epoch to use next; a retry carries the previous
//   epoch and is answered as done; an old epoch otherwise is PRODUCER_FENCED.
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class EndTxnHandler(TransactionCoordinator transactions) : RequestHandler<EndTxnRequest, EndTxnResponse>
{
    public override ApiKey ApiKey => ApiKey.EndTxn;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<EndTxnResponse> HandleAsync(RequestContext context, EndTxnRequest request, CancellationToken cancellationToken)
    {
        var transactionVersion = context.ApiVersion >= 5 ? TransactionCoordinator.TransactionVersion2 : (short)0;
        var result = await transactions.EndTxnAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed, transactionVersion, cancellationToken).ConfigureAwait(false);
        return new EndTxnResponse
        {
            ErrorCode = (short)AddPartitionsToTxnHandler.Compatible(result.Error, context.ApiVersion),
            ProducerId = result.ProducerId,
            ProducerEpoch = result.ProducerEpoch,
        };
    }
}
