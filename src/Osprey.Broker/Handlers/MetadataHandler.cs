// Metadata (key 3), versions 0-13.
//   Brokers (the registered, unfenced ones, at their endpoint for this listener, with their racks), cluster id (v2+), controller id (v1+), and topics from the
//   cluster image: all of them for a null list (v1+; an empty list asks for brokers only), or those named (by name,
//   or by topic id from v10). An unknown topic named by name is created when auto.create.topics.enable is on and
//   the request allows it (AllowAutoTopicCreation, v4+; always before v4) with num.partitions partitions;
//   otherwise it is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id). v13 adds a top-level error code.
//   Partitions carry leader, leader epoch, replicas, ISR and the offline replicas (on fenced or unregistered
//   brokers, v5+); a partition without a leader is LEADER_NOT_AVAILABLE, one whose leader has no endpoint at this
//   listener LISTENER_NOT_FOUND (clients retry both).
using Osprey.Broker.Control;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class MetadataHandler(BrokerIdentity identity, IMetadataQuorum metadata, TopicCreator creator, BrokerOptions options)
    : RequestHandler<MetadataRequest, MetadataResponse>
{
    public override ApiKey ApiKey => ApiKey.Metadata;

    public override short MinVersion => 0;

    public override short MaxVersion => 13;

    protected override async ValueTask<MetadataResponse> HandleAsync(RequestContext context, MetadataRequest request, CancellationToken cancellationToken)
    {
        var autoCreate = options.AutoCreateTopics && (context.ApiVersion < 4 || request.AllowAutoTopicCreation);
        var autoCreateErrors = new Dictionary<string, short>(StringComparer.Ordinal);
        if (autoCreate && request.Topics is not null)
        {
            foreach (var name in request.Topics.Select(t => t.Name).OfType<string>().Where(n => metadata.Image.Topic(n) is null).Distinct())
            {
                var result = new CreateTopicsResponse.CreatableTopicResult { Name = name };
                await creator.CreateOrForwardAsync(new CreateTopicsRequest.CreatableTopic { Name = name, NumPartitions = -1, ReplicationFactor = -1 }, result, cancellationToken).ConfigureAwait(false);
                if (result.ErrorCode is not (0 or (short)ErrorCode.TopicAlreadyExists))
                {
                    autoCreateErrors[name] = result.ErrorCode == (short)ErrorCode.InvalidTopicException ? (short)ErrorCode.InvalidTopicException : (short)ErrorCode.UnknownTopicOrPartition;
                }
            }
        }

        var image = metadata.Image;
        var response = new MetadataResponse
        {
            Brokers = [.. ClusterView.Brokers(image, options.ListenerName).Select(b => new MetadataResponse.MetadataResponseBroker { NodeId = b.Broker.Id, Host = b.Endpoint.Host, Port = b.Endpoint.Port, Rack = b.Broker.Rack })],
            ClusterId = identity.ClusterId,
            ControllerId = ClusterView.ControllerIdForClients(image, metadata),
        };

        if (request.Topics is null)
        {
            response.Topics.AddRange(image.Topics.Values.Select(t => Describe(image, t)));
        }
        else
        {
            foreach (var asked in request.Topics)
            {
                var topic = asked.Name is { } name ? image.Topic(name) : image.Topic(asked.TopicId);
                response.Topics.Add(topic is not null ? Describe(image, topic) : new MetadataResponse.MetadataResponseTopic
                {
                    ErrorCode = asked.Name is null ? (short)ErrorCode.UnknownTopicId
                        : autoCreateErrors.GetValueOrDefault(asked.Name, (short)ErrorCode.UnknownTopicOrPartition),
                    Name = asked.Name,
                    TopicId = asked.TopicId,
                });
            }
        }

        return response;
    }

    private MetadataResponse.MetadataResponseTopic Describe(ClusterImage image, TopicImage topic) => new()
    {
        Name = topic.Name,
        TopicId = topic.TopicId,
        IsInternal = TopicNames.IsInternal(topic.Name),
        Partitions = topic.Partitions.Values.Select(p => new MetadataResponse.MetadataResponsePartition
        {
            ErrorCode = (short)PartitionError(image, p),
            PartitionIndex = p.PartitionId,
            LeaderId = p.Leader,
            LeaderEpoch = p.LeaderEpoch,
            ReplicaNodes = [.. p.Replicas],
            IsrNodes = [.. p.Isr],
            OfflineReplicas = [.. p.Replicas.Where(r => !image.Brokers.TryGetValue(r, out var b) || b.Fenced)],
        }).ToList(),
    };

    private ErrorCode PartitionError(ClusterImage image, PartitionImage partition) =>
        partition.Leader < 0 || !image.Brokers.TryGetValue(partition.Leader, out var leader) ? ErrorCode.LeaderNotAvailable
            : leader.Endpoints.Any(e => e.Name.Equals(options.ListenerName, StringComparison.OrdinalIgnoreCase)) ? ErrorCode.None
            : ErrorCode.ListenerNotFound;
}
