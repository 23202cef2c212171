// OffsetDelete (key 47), version 0.
//   Deletes a group's committed offsets for the partitions named. Unknown group: GROUP_ID_NOT_FOUND; a topic the
//   group's members subscribe to: GROUP_SUBSCRIBED_TO_TOPIC for its partitions (the rest are deleted).
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class OffsetDeleteHandler(GroupCoordinator groups) : RequestHandler<OffsetDeleteRequest, OffsetDeleteResponse>
{
    public override ApiKey ApiKey => ApiKey.OffsetDelete;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override async ValueTask<OffsetDeleteResponse> HandleAsync(RequestContext context, OffsetDeleteRequest request, CancellationToken cancellationToken) =>
        await groups.DeleteOffsetsAsync(request, cancellationToken).ConfigureAwait(false);
}
