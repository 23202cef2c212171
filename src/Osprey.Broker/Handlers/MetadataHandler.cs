// Metadata (key 3), versions 0-13.
//   Brokers (this node, at its advertised address), cluster id (v2+), controller id (v1+), and topics from the
//   cluster image: all of them for a null list (v1+; an empty list asks for brokers only), or those named (by name,
//   or by topic id from v10). An unknown topic is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id); automatic
//   creation comes with auto.create.topics.enable. v13 adds a top-level error code (none here).
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class MetadataHandler(BrokerIdentity identity, MetadataLog metadata) : RequestHandler<MetadataRequest, MetadataResponse>
{
    public override ApiKey ApiKey => ApiKey.Metadata;

    public override short MinVersion => 0;

    public override short MaxVersion => 13;

    protected override ValueTask<MetadataResponse> HandleAsync(RequestContext context, MetadataRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new MetadataResponse
        {
            Brokers = [new MetadataResponse.MetadataResponseBroker { NodeId = identity.NodeId, Host = identity.Host, Port = identity.Port }],
            ClusterId = identity.ClusterId,
            ControllerId = identity.NodeId,
        };

        if (request.Topics is null)
        {
            response.Topics.AddRange(image.Topics.Values.Select(Describe));
        }
        else
        {
            foreach (var asked in request.Topics)
            {
                var topic = asked.Name is { } name ? image.Topic(name) : image.Topic(asked.TopicId);
                response.Topics.Add(topic is not null ? Describe(topic) : new MetadataResponse.MetadataResponseTopic
                {
                    ErrorCode = (short)(asked.Name is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition),
                    Name = asked.Name,
                    TopicId = asked.TopicId,
                });
            }
        }

        return ValueTask.FromResult(response);
    }

    private static MetadataResponse.MetadataResponseTopic Describe(TopicImage topic) => new()
    {
        Name = topic.Name,
        TopicId = topic.TopicId,
        IsInternal = topic.Name.StartsWith("__", StringComparison.Ordinal),
        Partitions = topic.Partitions.Values.Select(p => new MetadataResponse.MetadataResponsePartition
        {
            PartitionIndex = p.PartitionId,
            LeaderId = p.Leader,
            LeaderEpoch = p.LeaderEpoch,
            ReplicaNodes = [.. p.Replicas],
            IsrNodes = [.. p.Isr],
        }).ToList(),
    };
}
