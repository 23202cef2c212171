// DeleteGroups (key 42), versions 0-3.
//   Deletes empty groups with their committed offsets. A group with members: NON_EMPTY_GROUP; unknown:
//   GROUP_ID_NOT_FOUND.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DeleteGroupsHandler(GroupCoordinator groups) : RequestHandler<DeleteGroupsRequest, DeleteGroupsResponse>
{
    public override ApiKey ApiKey => ApiKey.DeleteGroups;

    public override short MinVersion => 0;

    public override short MaxVersion => 3;

    protected override async ValueTask<DeleteGroupsResponse> HandleAsync(RequestContext context, DeleteGroupsRequest request, CancellationToken cancellationToken)
    {
        var response = new DeleteGroupsResponse();
        foreach (var group in request.GroupsNames.Distinct(StringComparer.Ordinal))
        {
            var error = await groups.DeleteGroupAsync(group, cancellationToken).ConfigureAwait(false);
            response.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = group, ErrorCode = (short)error });
        }

        return response;
    }
}
