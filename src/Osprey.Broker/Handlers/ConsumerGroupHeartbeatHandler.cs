// ConsumerGroupHeartbeat (key 68), versions 0-1.
//   The consumer group protocol (KIP-848). Epoch 0 joins (with subscription by topic names and/or a regex, the
//   rebalance timeout and no owned partitions), -1 leaves, -2 is a static member leaving for a while; otherwise
//   the member's current epoch (FENCED_MEMBER_EPOCH when it is not, UNKNOWN_MEMBER_ID for a stranger). The answer
//   carries the member's epoch, the heartbeat interval and, when it changed or the request was a full one, the
//   partitions the member may use now. v1 requires the member id to come from the client (KIP-1082) and adds the
//   regex. INVALID_REQUEST for malformed requests, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION,
//   UNRELEASED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED; GROUP_ID_NOT_FOUND for a classic group with members.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ConsumerGroupHeartbeatHandler(GroupCoordinator groups) : RequestHandler<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>
{
    public override ApiKey ApiKey => ApiKey.ConsumerGroupHeartbeat;

    public override short MinVersion => 0;

    public override short MaxVersion => 1;

    protected override async ValueTask<ConsumerGroupHeartbeatResponse> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request, CancellationToken cancellationToken)
    {
        var host = context.RemoteEndPoint is System.Net.IPEndPoint ip ? "/" + ip.Address : "/unknown";
        return await groups.ConsumerHeartbeatAsync(request, context.ApiVersion, context.ClientId ?? "", host, cancellationToken).ConfigureAwait(false);
    }
}
