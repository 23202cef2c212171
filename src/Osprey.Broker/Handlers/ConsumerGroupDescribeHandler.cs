// ConsumerGroupDescribe (key 69), versions 0-1.
//   Consumer-protocol groups: state (Empty, Assigning, Reconciling, Stable), group and assignment epochs, the
//   assignor, and each member's subscription, epoch, current and target assignment (topic ids and names). v1 adds
//   the member type (1, consumer). A classic group or an unknown one: GROUP_ID_NOT_FOUND (clients then ask
//   DescribeGroups).
using Osprey.Broker.Groups;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ConsumerGroupDescribeHandler(GroupCoordinator groups) : RequestHandler<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>
{
    public override ApiKey ApiKey => ApiKey.ConsumerGroupDescribe;

    public override short MinVersion => 0;

    public override short MaxVersion => 1;

    protected override async ValueTask<ConsumerGroupDescribeResponse> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request, CancellationToken cancellationToken)
    {
        var response = new ConsumerGroupDescribeResponse();
        foreach (var group in request.GroupIds)
        {
            response.Groups.Add(await groups.DescribeConsumerGroupAsync(group, cancellationToken).ConfigureAwait(false));
        }

        return response;
    }
}
