// SyncGroup (key 14), versions 0-5.
//   After a rebalance the leader sends every member's assignment; each member's SyncGroup is answered with its own
//   (followers wait for the leader). Unknown member: UNKNOWN_MEMBER_ID; old generation: ILLEGAL_GENERATION; a
//   protocol type or name (v5+) other than the group's: INCONSISTENT_GROUP_PROTOCOL; while members rejoin:
//   REBALANCE_IN_PROGRESS; a replaced static member: FENCED_INSTANCE_ID.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class SyncGroupHandler(GroupCoordinator groups) : RequestHandler<SyncGroupRequest, SyncGroupResponse>
{
    public override ApiKey ApiKey => ApiKey.SyncGroup;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<SyncGroupResponse> HandleAsync(RequestContext context, SyncGroupRequest request, CancellationToken cancellationToken) =>
        await groups.SyncGroupAsync(request, cancellationToken).ConfigureAwait(false);
}
