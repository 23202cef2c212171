// JoinGroup (key 11), versions 0-9.
//   Joins (or rejoins) a classic group; the answer waits until the rebalance completes. v4+: a member without an
//   id first gets MEMBER_ID_REQUIRED with one to rejoin with (static members, with group.instance.id, do not).
//   Session timeout outside group.min/max.session.timeout.ms: INVALID_SESSION_TIMEOUT; a protocol type or set of
//   protocols the group cannot share: INCONSISTENT_GROUP_PROTOCOL; group.max.size reached: GROUP_MAX_SIZE_REACHED;
//   an unknown member id: UNKNOWN_MEMBER_ID; a replaced static member: FENCED_INSTANCE_ID. The leader's answer
//   lists every member with its metadata for the chosen protocol.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class JoinGroupHandler(GroupCoordinator groups) : RequestHandler<JoinGroupRequest, JoinGroupResponse>
{
    public override ApiKey ApiKey => ApiKey.JoinGroup;

    public override short MinVersion => 0;

    public override short MaxVersion => 9;

    protected override async ValueTask<JoinGroupResponse> HandleAsync(RequestContext context, JoinGroupRequest request, CancellationToken cancellationToken)
    {
        var host = context.RemoteEndPoint is System.Net.IPEndPoint ip ? "/" + ip.Address : "/unknown";
        var response = await groups.JoinGroupAsync(request, context.ApiVersion, context.ClientId ?? "", host, cancellationToken).ConfigureAwait(false);
        if (context.ApiVersion < 7)
        {
            // Before v7 the protocol name is not nullable and the type is not sent.
            response.ProtocolType = null;
            response.ProtocolName ??= "";
        }

        return response;
    }
}
