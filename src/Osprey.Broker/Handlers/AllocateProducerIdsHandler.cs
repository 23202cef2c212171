// AllocateProducerIds (key 67), version 0, served on the CONTROLLER listener only.
//   A broker asks the active controller for its next block of producer ids (1000 at a time) for InitProducerId. The
//   block is a ProducerIdsRecord in the metadata log, so no id is given twice, across controller changes too. A broker
//   not registered at the epoch it names gets STALE_BROKER_EPOCH; a node that is not the active controller NOT_CONTROLLER.
using Osprey.Broker.Control;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AllocateProducerIdsHandler(ControllerService controller) : RequestHandler<AllocateProducerIdsRequest, AllocateProducerIdsResponse>
{
    public override ApiKey ApiKey => ApiKey.AllocateProducerIds;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override async ValueTask<AllocateProducerIdsResponse> HandleAsync(RequestContext context, AllocateProducerIdsRequest request, CancellationToken cancellationToken) =>
        (AllocateProducerIdsResponse)await controller.HandleAsync(request, cancellationToken).ConfigureAwait(false);
}
