// ListGroups (key 16), versions 0-5.
//   Every group with its protocol type; v4+ adds its state and filters by state names (any case); v5+ adds the
//   group type ("classic" or "consumer") and filters by it.
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ListGroupsHandler(GroupCoordinator groups) : RequestHandler<ListGroupsRequest, ListGroupsResponse>
{
    public override ApiKey ApiKey => ApiKey.ListGroups;

    public override short MinVersion => 0;

    public override short MaxVersion => 5;

    protected override async ValueTask<ListGroupsResponse> HandleAsync(RequestContext context, ListGroupsRequest request, CancellationToken cancellationToken)
    {
        var (error, listed) = await groups.ListGroupsAsync(request.StatesFilter, cancellationToken).ConfigureAwait(false);
        var types = request.TypesFilter.Count == 0 ? null : new HashSet<string>(request.TypesFilter, StringComparer.OrdinalIgnoreCase);
        return new ListGroupsResponse
        {
            ErrorCode = (short)error,
            Groups = listed
                .Where(g => types is null || types.Contains(g.Type))
                .Select(g => new ListGroupsResponse.ListedGroup { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = g.State, GroupType = g.Type })
                .ToList(),
        };
    }
}
