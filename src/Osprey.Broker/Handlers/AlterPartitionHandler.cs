// AlterPartition (key 56), versions 2-3, served on the CONTROLLER listener only.
//   A partition's leader asks the active controller to change its ISR: to drop followers that fell behind, or to
//   add ones that caught up. The leader must be the broker registered at the epoch it names (STALE_BROKER_EPOCH),
//   still the leader (NOT_LEADER_OR_FOLLOWER) at the current leader epoch (FENCED_LEADER_EPOCH) and partition epoch
//   (INVALID_UPDATE_VERSION); the new ISR holds the leader and replicas only (INVALID_REQUEST), and a joining replica
//   is unfenced, not shutting down and, in v3, at its current broker epoch (INELIGIBLE_REPLICA). An accepted change
//   is a PartitionChangeRecord; the answer carries the ISR and the new partition epoch. Not the active controller:
//   NOT_CONTROLLER.
using Osprey.Broker.Control;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AlterPartitionHandler(ControllerService controller) : RequestHandler<AlterPartitionRequest, AlterPartitionResponse>
{
    public override ApiKey ApiKey => ApiKey.AlterPartition;

    public override short MinVersion => 2;

    public override short MaxVersion => 3;

    protected override async ValueTask<AlterPartitionResponse> HandleAsync(RequestContext context, AlterPartitionRequest request, CancellationToken cancellationToken) =>
        (AlterPartitionResponse)await controller.HandleAsync(request, cancellationToken).ConfigureAwait(false);
}
