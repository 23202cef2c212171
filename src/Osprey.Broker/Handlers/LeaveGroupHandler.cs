// LeaveGroup (key 13), versions 0-5.
//   v0-2: one member by id. v3+: a batch of members, by member id or (static members) by group.instance.id, each
//   answered with its own error. The group rebalances without them.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class LeaveGroupHandler(GroupCoordinator groups) : RequestHandler<LeaveGroupRequest, LeaveGroupResponse>
{
    public override ApiKey ApiKey => ApiKey.LeaveGroup;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<LeaveGroupResponse> HandleAsync(RequestContext context, LeaveGroupRequest request, CancellationToken cancellationToken) =>
        await groups.LeaveGroupAsync(request, context.ApiVersion, cancellationToken).ConfigureAwait(false);
}
