// InitProducerId (key 22), versions 0-5.
//   Without a transactional id (an idempotent producer) every call gets a new producer id, epoch 0; ids come from
//   blocks reserved in the metadata log, so they are unique across restarts. An existing id and epoch in v3+ (a
//   producer recovering from an error) also gets a fresh id. A transactional id needs the transaction
//   coordinator, which this broker does not run yet: COORDINATOR_NOT_AVAILABLE.
using Osprey.Broker.Producers;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class InitProducerIdHandler(ProducerIdManager producerIds) : RequestHandler<InitProducerIdRequest, InitProducerIdResponse>
{
    public override ApiKey ApiKey => ApiKey.InitProducerId;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<InitProducerIdResponse> HandleAsync(RequestContext context, InitProducerIdRequest request, CancellationToken cancellationToken)
    {
        if (request.TransactionalId is not null)
        {
            return new InitProducerIdResponse { ErrorCode = (short)ErrorCode.CoordinatorNotAvailable, ProducerId = -1, ProducerEpoch = -1 };
        }

        var id = await producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
        return new InitProducerIdResponse { ProducerId = id, ProducerEpoch = 0 };
    }
}
