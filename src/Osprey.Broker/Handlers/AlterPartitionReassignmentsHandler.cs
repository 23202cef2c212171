// AlterPartitionReassignments (key 45), versions 0-1.
//   On a single node the only assignment a partition can have is the one it has: reassigning it to this broker is
//   done at once (NONE); naming another broker, a broker twice or no broker is INVALID_REPLICA_ASSIGNMENT;
//   cancelling (null replicas) is NO_REASSIGNMENT_IN_PROGRESS; an unknown topic or partition
//   UNKNOWN_TOPIC_OR_PARTITION. Messages are Kafka's. v1 adds AllowReplicationFactorChange, which a move onto the
//   one broker never needs.
using System.Globalization;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AlterPartitionReassignmentsHandler(IMetadataQuorum metadata, BrokerIdentity identity)
    : RequestHandler<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>
{
    public override ApiKey ApiKey => ApiKey.AlterPartitionReassignments;

    public override short MinVersion => 0;

    public override short MaxVersion => 1;

    protected override ValueTask<AlterPartitionReassignmentsResponse> HandleAsync(RequestContext context, AlterPartitionReassignmentsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new AlterPartitionReassignmentsResponse { ErrorMessage = null, AllowReplicationFactorChange = request.AllowReplicationFactorChange };
        foreach (var topic in request.Topics)
        {
            var known = image.Topic(topic.Name);
            response.Responses.Add(new AlterPartitionReassignmentsResponse.ReassignableTopicResponse
            {
                Name = topic.Name,
                Partitions = [.. topic.Partitions.Select(p =>
                {
                    var (error, message) = Check(known, topic.Name, p);
                    return new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error, ErrorMessage = message };
                })],
            });
        }

        return ValueTask.FromResult(response);
    }

    private (ErrorCode, string?) Check(TopicImage? topic, string name, AlterPartitionReassignmentsRequest.ReassignablePartition partition)
    {
        if (topic is null)
        {
            return (ErrorCode.UnknownTopicOrPartition, $"Unable to find a topic named {name}.");
        }

        if (!topic.Partitions.ContainsKey(partition.PartitionIndex))
        {
            return (ErrorCode.UnknownTopicOrPartition, $"Unable to find partition {name}:{partition.PartitionIndex}.");
        }

        if (partition.Replicas is not { } replicas)
        {
            return (ErrorCode.NoReassignmentInProgress, null);
        }

        if (replicas.Count == 0)
        {
            return (ErrorCode.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.");
        }

        if (replicas.GroupBy(r => r).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            return (ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes the broker {twice.Key} more than once.");
        }

        if (replicas.FirstOrDefault(r => r != identity.NodeId, identity.NodeId) is var other && other != identity.NodeId)
        {
            return (ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes broker {other.ToString(CultureInfo.InvariantCulture)}, but no such broker is registered.");
        }

        return (ErrorCode.None, null);
    }
}
