// CreatePartitions (key 37), versions 0-3.
//   Raises a topic's partition count to Count (never lowers it: INVALID_PARTITIONS). Manual assignments, if given,
//   must name one list per new partition, of registered brokers, as many as the topic's replication factor
//   (INVALID_REPLICA_ASSIGNMENT); otherwise the new replicas are placed like a new topic's. The new partitions are
//   PartitionRecords in the metadata log, then logs. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; the same topic
//   twice in a request: INVALID_REQUEST. ValidateOnly checks without creating. A broker that is not the active
//   controller forwards the request and answers once its own metadata has the new partitions.
using Osprey.Broker.Control;
using Osprey.Controller;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class CreatePartitionsHandler(IMetadataQuorum metadata, AdminForwarder forwarder, ImageWaiter images)
    : RequestHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    public override ApiKey ApiKey => ApiKey.CreatePartitions;

    public override short MinVersion => 0;

    public override short MaxVersion => 3;

    protected override async ValueTask<CreatePartitionsResponse> HandleAsync(RequestContext context, CreatePartitionsRequest request, CancellationToken cancellationToken)
    {
        if (forwarder.ShouldForward)
        {
            return await ForwardAsync(context, request, cancellationToken).ConfigureAwait(false);
        }

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
            try
            {
                var (_, error) = await metadata.UpdateAsync<(ErrorCode Code, string? Message)>(
                    current => Plan(current, topic, request.ValidateOnly),
                    cancellationToken).ConfigureAwait(false);
                (result.ErrorCode, result.ErrorMessage) = ((short)error.Code, error.Message);
            }
            catch (NotControllerException e)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.NotController, e.Message);
            }
        }

        return response;
    }

    private async Task<CreatePartitionsResponse> ForwardAsync(RequestContext context, CreatePartitionsRequest request, CancellationToken cancellationToken)
    {
        CreatePartitionsResponse response;
        try
        {
            response = await forwarder.ForwardAsync<CreatePartitionsResponse>(request, context.ApiVersion, cancellationToken).ConfigureAwait(false);
        }
        catch (NotControllerException e)
        {
            response = new CreatePartitionsResponse();
            response.Results.AddRange(request.Topics.Select(t => new CreatePartitionsResponse.CreatePartitionsTopicResult
            {
                Name = t.Name,
                ErrorCode = (short)ErrorCode.NotController,
                ErrorMessage = e.Message,
            }));
            return response;
        }

        if (!request.ValidateOnly)
        {
            var grown = response.Results.Where(r => r.ErrorCode == 0).Select(r => (r.Name, request.Topics.First(t => t.Name == r.Name).Count)).ToList();
            await images.WaitAsync(image => grown.All(g => image.Topic(g.Name) is not { } t || t.Partitions.Count >= g.Count), AdminForwarder.CatchUpTimeout, cancellationToken).ConfigureAwait(false);
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
        var replicationFactor = existing.Partitions.Values.First().Replicas.Length;
        IReadOnlyList<IReadOnlyList<int>> assignment;
        if (topic.Assignments is { } assignments)
        {
            if (assignments.Count != added)
            {
                return ([], (ErrorCode.InvalidReplicaAssignment, $"Attempted to add {added} additional partition(s), but only {assignments.Count} assignment(s) were specified."));
            }

            assignment = [.. assignments.Select(a => (IReadOnlyList<int>)a.BrokerIds)];
            if (PartitionAssigner.CheckManual(image, assignment, current, replicationFactor) is { } invalid)
            {
                return ([], (ErrorCode.InvalidReplicaAssignment, invalid));
            }
        }
        else
        {
            var (placed, error, message) = PartitionAssigner.Place(image, added, replicationFactor, Random.Shared, current);
            if (placed is null)
            {
                return ([], (error, message));
            }

            assignment = placed;
        }

        if (validateOnly)
        {
            return ([], (ErrorCode.None, null));
        }

        var records = assignment.Select((replicas, i) => (IVersionedMessage)PartitionAssigner.NewPartition(image, existing.TopicId, current + i, replicas)).ToList();
        return (records, (ErrorCode.None, null));
    }
}
