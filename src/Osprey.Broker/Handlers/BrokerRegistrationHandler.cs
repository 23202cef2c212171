// BrokerRegistration (key 62), versions 0-4, served on the CONTROLLER listener only.
//   A broker announces itself: id, cluster id, a new incarnation id per process start, its listeners, the features
//   it supports and its rack. The controller answers with the broker epoch (the metadata offset of the
//   RegisterBrokerRecord it writes) or INCONSISTENT_CLUSTER_ID, DUPLICATE_BROKER_REGISTRATION (another incarnation
//   still has a live session), UNSUPPORTED_VERSION (a finalized feature level outside the broker's range).
using Osprey.Broker.Control;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class BrokerRegistrationHandler(ControllerService controller) : RequestHandler<BrokerRegistrationRequest, BrokerRegistrationResponse>
{
    public override ApiKey ApiKey => ApiKey.BrokerRegistration;

    public override short MinVersion => 0;

    public override short MaxVersion => 4;

    protected override async ValueTask<BrokerRegistrationResponse> HandleAsync(RequestContext context, BrokerRegistrationRequest request, CancellationToken cancellationToken) =>
        (BrokerRegistrationResponse)await controller.HandleAsync(request, cancellationToken).ConfigureAwait(false);
}
