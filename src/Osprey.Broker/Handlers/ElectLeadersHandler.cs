// ElectLeaders (key 43), versions 0-2.
//   Preferred election (type 0; v0 has only this one): each named partition's leadership moves to its first
//   replica when that one is in the ISR and its broker is unfenced and not shutting down; otherwise
//   PREFERRED_LEADER_NOT_AVAILABLE. Unclean election (type 1): a partition without a leader gets one, from the ISR
//   if possible, else any replica on a live broker (which is then the whole ISR), else ELIGIBLE_LEADERS_NOT_AVAILABLE.
//   A partition whose leader is already the one asked for is ELECTION_NOT_NEEDED; an unknown one
//   UNKNOWN_TOPIC_OR_PARTITION. Null partitions (all of them): every topic is listed, with only the partitions for
//   which an election was needed. v1 adds the election type and the top-level error code. The active controller
//   decides (a broker that is not it forwards the request); the elections are PartitionChangeRecords.
using Osprey.Broker.Control;
using Osprey.Controller;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ElectLeadersHandler(IMetadataQuorum metadata, AdminForwarder forwarder) : RequestHandler<ElectLeadersRequest, ElectLeadersResponse>
{
    public override ApiKey ApiKey => ApiKey.ElectLeaders;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override async ValueTask<ElectLeadersResponse> HandleAsync(RequestContext context, ElectLeadersRequest request, CancellationToken cancellationToken)
    {
        var asked = request.TopicPartitions?.SelectMany(t => t.Partitions.Select(p => (t.Topic, p))).ToList();
        try
        {
            if (forwarder.ShouldForward)
            {
                return await forwarder.ForwardAsync<ElectLeadersResponse>(request, context.ApiVersion, cancellationToken).ConfigureAwait(false);
            }

            var electionType = context.ApiVersion >= 1 ? request.ElectionType : (sbyte)0;
            var (image, results) = await metadata.UpdateAsync(
                image =>
                {
                    var (records, results) = PartitionChanges.ElectLeaders(image, electionType, asked, id => image.Brokers.TryGetValue(id, out var b) && !b.Fenced && !b.InControlledShutdown);
                    return ((IReadOnlyList<IVersionedMessage>)records, results);
                },
                cancellationToken).ConfigureAwait(false);
            return Respond(request.TopicPartitions is null ? image.Topics.Keys : null, results.Where(r => request.TopicPartitions is not null || r.Error != ErrorCode.ElectionNotNeeded));
        }
        catch (NotControllerException e)
        {
            return Respond(null, (asked ?? []).Select(a => (a.Topic, a.p, ErrorCode.NotController, (string?)e.Message)));
        }
    }

    /// <summary>Results grouped by topic, in the order asked; <paramref name="allTopics"/> lists every topic (a request for all).</summary>
    private static ElectLeadersResponse Respond(IEnumerable<string>? allTopics, IEnumerable<(string Topic, int Partition, ErrorCode Error, string? Message)> results)
    {
        var response = new ElectLeadersResponse();
        var byTopic = new Dictionary<string, ElectLeadersResponse.ReplicaElectionResult>(StringComparer.Ordinal);
        ElectLeadersResponse.ReplicaElectionResult TopicResult(string topic)
        {
            if (!byTopic.TryGetValue(topic, out var result))
            {
                result = new ElectLeadersResponse.ReplicaElectionResult { Topic = topic };
                byTopic[topic] = result;
                response.ReplicaElectionResults.Add(result);
            }

            return result;
        }

        foreach (var topic in allTopics ?? [])
        {
            TopicResult(topic);
        }

        foreach (var (topic, partition, error, message) in results)
        {
            TopicResult(topic).PartitionResult.Add(new ElectLeadersResponse.PartitionResult { PartitionId = partition, ErrorCode = (short)error, ErrorMessage = message });
        }

        return response;
    }
}
