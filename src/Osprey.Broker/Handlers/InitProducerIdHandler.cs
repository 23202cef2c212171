// InitProducerId (key 22), versions 0-5.
//   Without a transactional id (an idempotent producer) every call gets a new producer id, epoch 0; ids come from
//   blocks the active controller reserves in the metadata log (AllocateProducerIds), so they are unique across
//   restarts and brokers; while no controller gives a block, COORDINATOR_LOAD_IN_PROGRESS (retriable). An existing id and epoch in v3+ (a
//   producer recovering from an error) also gets a fresh id. With a transactional id the transaction coordinator
//   answers: a new id gets a producer id at epoch 0, a known one its epoch bumped (fencing older producers, aborting
//   an open transaction); INVALID_TRANSACTION_TIMEOUT beyond transaction.max.timeout.ms; PRODUCER_FENCED when a
//   recovering producer's id and epoch are not the current ones.
using Osprey.Broker.Producers;
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class InitProducerIdHandler(ProducerIdManager producerIds, TransactionCoordinator transactions) : RequestHandler<InitProducerIdRequest, InitProducerIdResponse>
{
    public override ApiKey ApiKey => ApiKey.InitProducerId;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<InitProducerIdResponse> HandleAsync(RequestContext context, InitProducerIdRequest request, CancellationToken cancellationToken)
    {
        try
        {
            if (request.TransactionalId is not null)
            {
                var (error, producerId, epoch) = await transactions.InitProducerIdAsync(
                    request.TransactionalId, request.TransactionTimeoutMs, request.ProducerId, request.ProducerEpoch, cancellationToken).ConfigureAwait(false);
                if (error == ErrorCode.ProducerFenced && context.ApiVersion < 4)
                {
                    error = ErrorCode.InvalidProducerEpoch; // PRODUCER_FENCED is known from v4
                }

                return new InitProducerIdResponse { ErrorCode = (short)error, ProducerId = producerId, ProducerEpoch = epoch };
            }

            var id = await producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
            return new InitProducerIdResponse { ProducerId = id, ProducerEpoch = 0 };
        }
        catch (ProducerIdsUnavailableException)
        {
            // The controller is out of reach for now; the client retries.
            return new InitProducerIdResponse { ErrorCode = (short)ErrorCode.CoordinatorLoadInProgress, ProducerId = -1, ProducerEpoch = -1 };
        }
    }
}
