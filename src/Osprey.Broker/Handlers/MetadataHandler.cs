// Metadata (key 3), versions 0-13.
//   Brokers (this node, at its advertised address), cluster id (v2+), controller id (v1+). Topics come with the
//   topic registry; until then every named topic is UNKNOWN_TOPIC_OR_PARTITION and "all topics" is empty.
//   v13 adds a top-level error code (always none here).
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class MetadataHandler(BrokerIdentity identity) : RequestHandler<MetadataRequest, MetadataResponse>
{
    public override ApiKey ApiKey => ApiKey.Metadata;

    public override short MinVersion => 0;

    public override short MaxVersion => 13;

    protected override ValueTask<MetadataResponse> HandleAsync(RequestContext context, MetadataRequest request, CancellationToken cancellationToken)
    {
        var response = new MetadataResponse
        {
            Brokers = [new MetadataResponse.MetadataResponseBroker { NodeId = identity.NodeId, Host = identity.Host, Port = identity.Port }],
            ClusterId = identity.ClusterId,
            ControllerId = identity.NodeId,
            Topics = (request.Topics ?? []).Select(t => new MetadataResponse.MetadataResponseTopic
            {
                ErrorCode = (short)ErrorCode.UnknownTopicOrPartition,
                Name = t.Name,
                TopicId = t.TopicId,
            }).ToList(),
        };
        return ValueTask.FromResult(response);
    }
}
