// AddOffsetsToTxn (key 25), versions 0-4.
//   Adds the group's __consumer_offsets partition to the producer's transaction, so that TxnOffsetCommit may write
//   there. Errors as AddPartitionsToTxn's, and INVALID_GROUP_ID for an empty group id.
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AddOffsetsToTxnHandler(TransactionCoordinator transactions) : RequestHandler<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>
{
    public override ApiKey ApiKey => ApiKey.AddOffsetsToTxn;

    public override short MinVersion => 0;

    public override short MaxVersion => 4;

    protected override async ValueTask<AddOffsetsToTxnResponse> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request, CancellationToken cancellationToken)
    {
        var error = await transactions.AddOffsetsAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId, TxnAddMode.Explicit, cancellationToken).ConfigureAwait(false);
        return new AddOffsetsToTxnResponse { ErrorCode = (short)AddPartitionsToTxnHandler.Compatible(error, context.ApiVersion) };
    }
}
