// ListPartitionReassignments (key 46), version 0.
//   A reassignment onto the single node completes when it is asked for, so none is ever in progress: the answer
//   lists no partitions, for all topics (null) or the ones named, as Kafka answers when nothing is moving.
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ListPartitionReassignmentsHandler : RequestHandler<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>
{
    public override ApiKey ApiKey => ApiKey.ListPartitionReassignments;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override ValueTask<ListPartitionReassignmentsResponse> HandleAsync(RequestContext context, ListPartitionReassignmentsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ListPartitionReassignmentsResponse { ErrorMessage = null });
}
