// BrokerHeartbeat (key 63), versions 0-2, served on the CONTROLLER listener only.
//   A registered broker's periodic sign of life, with the metadata offset it has applied and whether it wants to be
//   fenced or to shut down. The answer says whether it has caught up, whether it is fenced, and whether it may shut
//   down. An epoch other than the registration's is STALE_BROKER_EPOCH; an unknown broker BROKER_ID_NOT_REGISTERED.
using Osprey.Broker.Control;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class BrokerHeartbeatHandler(ControllerService controller) : RequestHandler<BrokerHeartbeatRequest, BrokerHeartbeatResponse>
{
    public override ApiKey ApiKey => ApiKey.BrokerHeartbeat;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override async ValueTask<BrokerHeartbeatResponse> HandleAsync(RequestContext context, BrokerHeartbeatRequest request, CancellationToken cancellationToken) =>
        (BrokerHeartbeatResponse)await controller.HandleAsync(request, cancellationToken).ConfigureAwait(false);
}
