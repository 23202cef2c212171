// ElectLeaders (key 43), versions 0-2.
//   On a single node every partition already has its only replica as leader: each named partition that exists is
//   ELECTION_NOT_NEEDED (preferred or unclean alike), an unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION.
//   Null partitions (all of them) answers each topic with no partition results, as Kafka does when no election is
//   needed anywhere. v1 adds the election type and the top-level error code.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ElectLeadersHandler(IMetadataQuorum metadata) : RequestHandler<ElectLeadersRequest, ElectLeadersResponse>
{
    public override ApiKey ApiKey => ApiKey.ElectLeaders;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override ValueTask<ElectLeadersResponse> HandleAsync(RequestContext context, ElectLeadersRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new ElectLeadersResponse();
        if (request.TopicPartitions is null)
        {
            response.ReplicaElectionResults = [.. image.Topics.Keys.Select(t => new ElectLeadersResponse.ReplicaElectionResult { Topic = t })];
            return ValueTask.FromResult(response);
        }

        foreach (var topic in request.TopicPartitions)
        {
            var known = image.Topic(topic.Topic);
            response.ReplicaElectionResults.Add(new ElectLeadersResponse.ReplicaElectionResult
            {
                Topic = topic.Topic,
                PartitionResult = [.. topic.Partitions.Select(p => known is null
                    ? Result(p, ErrorCode.UnknownTopicOrPartition, $"No such topic as {topic.Topic}")
                    : known.Partitions.ContainsKey(p)
                        ? Result(p, ErrorCode.ElectionNotNeeded, "Leader election not needed for topic partition.")
                        : Result(p, ErrorCode.UnknownTopicOrPartition, $"No such partition as {topic.Topic}-{p}"))],
            });
        }

        return ValueTask.FromResult(response);
    }

    private static ElectLeadersResponse.PartitionResult Result(int partition, ErrorCode error, string message) =>
        new() { PartitionId = partition, ErrorCode = (short)error, ErrorMessage = message };
}
