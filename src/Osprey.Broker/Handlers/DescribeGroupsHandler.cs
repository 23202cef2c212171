// DescribeGroups (key 15), versions 0-6.
//   Each group's state, protocol type, chosen protocol and members (client id, host, and in Stable their metadata
//   and assignment). An unknown group is reported as Dead; from v6 with GROUP_ID_NOT_FOUND.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeGroupsHandler(GroupCoordinator groups) : RequestHandler<DescribeGroupsRequest, DescribeGroupsResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeGroups;

    public override short MinVersion => 0;

    public override short MaxVersion => 6;

    protected override async ValueTask<DescribeGroupsResponse> HandleAsync(RequestContext context, DescribeGroupsRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeGroupsResponse();
        foreach (var group in request.Groups)
        {
            response.Groups.Add(await groups.DescribeGroupAsync(group, context.ApiVersion, cancellationToken).ConfigureAwait(false));
        }

        return response;
    }
}
