// CreatePartitions (key 37), versions 0-3.
//   Raises a topic's partition count to Count (never lowers it: INVALID_PARTITIONS). Manual assignments, if given,
//   must name one list per new partition, each only this node (INVALID_REPLICA_ASSIGNMENT). The new partitions are
//   PartitionRecords in the metadata log, then logs. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; the same topic
//   twice in a request: INVALID_REQUEST. ValidateOnly checks without creating.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class CreatePartitionsHandler(IMetadataQuorum metadata, BrokerIdentity identity)
    : RequestHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    public override ApiKey ApiKey => ApiKey.CreatePartitions;

    public override short MinVersion => 0;

    public override short MaxVersion => 3;

    protected override async ValueTask<CreatePartitionsResponse> HandleAsync(RequestContext context, CreatePartitionsRequest request, CancellationToken cancellationToken)
    {
        var response = new CreatePartitionsResponse();
        var duplicates = request.Topics.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var topic in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = topic.Name };
            response.Results.Add(result);
            if (duplicates.Contains(topic.Name))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidRequest, $"Topic {topic.Name} appears more than once in the request.");
                continue;
            }

            // The new partitions' logs are opened by the metadata publisher.
            var (_, error) = await metadata.UpdateAsync<(ErrorCode Code, string? Message)>(
                current => Plan(current, topic, request.ValidateOnly),
                cancellationToken).ConfigureAwait(false);
            (result.ErrorCode, result.ErrorMessage) = ((short)error.Code, error.Message);
        }

        return response;
    }

    private (IReadOnlyList<IVersionedMessage>, (ErrorCode, string?)) Plan(ClusterImage image, CreatePartitionsRequest.CreatePartitionsTopic topic, bool validateOnly)
    {
        if (image.Topic(topic.Name) is not { } existing)
        {
            return ([], (ErrorCode.UnknownTopicOrPartition, $"The topic '{topic.Name}' does not exist."));
        }

        var current = existing.Partitions.Count;
        // Kafka 4.0's wording for both.
        if (topic.Count < current)
        {
            return ([], (ErrorCode.InvalidPartitions, $"The topic {topic.Name} currently has {current} partition(s); {topic.Count} would not be an increase."));
        }

        if (topic.Count == current)
        {
            return ([], (ErrorCode.InvalidPartitions, $"Topic already has {current} partition(s)."));
        }

        var added = topic.Count - current;
        if (topic.Assignments is { } assignments
            && (assignments.Count != added || assignments.Any(a => a.BrokerIds.Count == 0 || a.BrokerIds.Distinct().Count() != a.BrokerIds.Count || a.BrokerIds.Any(b => b != identity.NodeId))))
        {
            return ([], (ErrorCode.InvalidReplicaAssignment, $"The assignment must name {added} new partitions, each with only broker {identity.NodeId}."));
        }

        if (validateOnly)
        {
            return ([], (ErrorCode.None, null));
        }

        var records = Enumerable.Range(current, added).Select(p => (IVersionedMessage)new PartitionRecord
        {
            PartitionId = p,
            TopicId = existing.TopicId,
            Replicas = [identity.NodeId],
            Isr = [identity.NodeId],
            Leader = identity.NodeId,
            LeaderEpoch = 0,
            PartitionEpoch = 0,
        }).ToList();
        return (records, (ErrorCode.None, null));
    }
}
