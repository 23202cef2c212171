// Heartbeat (key 12), versions 0-4.
//   Keeps a member's session alive. REBALANCE_IN_PROGRESS tells it to rejoin; UNKNOWN_MEMBER_ID,
//   ILLEGAL_GENERATION and FENCED_INSTANCE_ID that it is no longer part of the group as it thinks.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class HeartbeatHandler(GroupCoordinator groups) : RequestHandler<HeartbeatRequest, HeartbeatResponse>
{
    public override ApiKey ApiKey => ApiKey.Heartbeat;

    public override short MinVersion => 0;

    public override short MaxVersion => 4;

    protected override async ValueTask<HeartbeatResponse> HandleAsync(RequestContext context, HeartbeatRequest request, CancellationToken cancellationToken) =>
        await groups.HeartbeatAsync(request, cancellationToken).ConfigureAwait(false);
}
