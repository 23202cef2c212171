// DescribeQuorum (key 55), versions 0-2.
//   The metadata quorum of __cluster_metadata-0: on a single node this node is the one voter and the leader, its
//   log end and high watermark the metadata log's end offset, caught up now; no observers. Any other topic or
//   partition is UNKNOWN_TOPIC_OR_PARTITION. v1 adds the fetch and catch-up times, v2 the voters' directory ids and
//   their listeners (the controller listener; the client listener on a node that has none).
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeQuorumHandler(IMetadataQuorum metadata, BrokerIdentity identity, BrokerOptions options, BrokerServerPorts ports) : RequestHandler<DescribeQuorumRequest, DescribeQuorumResponse>
{
    /// <summary>The epoch of the single voter's leadership: it elected itself once, as a new single-node KRaft quorum does.</summary>
    public const int LeaderEpoch = 1;

    public override ApiKey ApiKey => ApiKey.DescribeQuorum;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override ValueTask<DescribeQuorumResponse> HandleAsync(RequestContext context, DescribeQuorumRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeQuorumResponse { ErrorMessage = null };
        var now = options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        var end = metadata.EndOffset;
        foreach (var topic in request.Topics)
        {
            var result = new DescribeQuorumResponse.TopicData { TopicName = topic.TopicName };
            response.Topics.Add(result);
            foreach (var partition in topic.Partitions)
            {
                if (topic.TopicName != MetadataLog.Topic || partition.PartitionIndex != 0)
                {
                    result.Partitions.Add(new DescribeQuorumResponse.PartitionData
                    {
                        PartitionIndex = partition.PartitionIndex,
                        ErrorCode = (short)ErrorCode.UnknownTopicOrPartition,
                        ErrorMessage = "This server does not host this topic-partition.",
                    });
                    continue;
                }

                result.Partitions.Add(new DescribeQuorumResponse.PartitionData
                {
                    PartitionIndex = 0,
                    ErrorMessage = null,
                    LeaderId = identity.NodeId,
                    LeaderEpoch = LeaderEpoch,
                    HighWatermark = end,
                    CurrentVoters = [new DescribeQuorumResponse.ReplicaState { ReplicaId = identity.NodeId, LogEndOffset = end, LastFetchTimestamp = now, LastCaughtUpTimestamp = now }],
                });
                if (context.ApiVersion >= 2 && response.Nodes.Count == 0)
                {
                    response.Nodes.Add(new DescribeQuorumResponse.Node
                    {
                        NodeId = identity.NodeId,
                        Listeners = [options.ControllerListener is { } controller
                            ? new DescribeQuorumResponse.Listener { Name = options.ControllerListenerName!, Host = options.ControllerAdvertisedHost ?? BrokerServer.HostOf(controller), Port = (ushort)(ports.Controller ?? controller.Port) }
                            : new DescribeQuorumResponse.Listener { Name = options.ListenerName, Host = identity.Host, Port = (ushort)identity.Port }],
                    });
                }
            }
        }

        return ValueTask.FromResult(response);
    }
}
