// DescribeQuorum (key 55), versions 0-2.
//   The metadata quorum of __cluster_metadata-0, as its leader knows it: leader id and epoch (the Raft term; 1 for a
//   single node, which elected itself once), high watermark, and each voter's log end offset and last fetch and
//   catch-up times, from its broker's last heartbeat (-1 where the leader has not heard from it yet); observers are
//   not listed yet. Offsets are metadata
//   offsets. Any other topic or partition is UNKNOWN_TOPIC_OR_PARTITION. A broker that is not the leader asks the
//   active controller and relays its answer; on the CONTROLLER listener a node that is not the leader answers
//   NOT_LEADER_OR_FOLLOWER, as Kafka's controllers do. v1 adds the times, v2 the voters' directory ids and their
//   listeners (the controller listener; the client listener on a node that has none).
using Osprey.Broker.Control;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeQuorumHandler(
    ControllerService quorum, BrokerIdentity identity, BrokerOptions options, BrokerServerPorts ports, IControllerChannel controller, bool controllerListener = false)
    : RequestHandler<DescribeQuorumRequest, DescribeQuorumResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeQuorum;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override async ValueTask<DescribeQuorumResponse> HandleAsync(RequestContext context, DescribeQuorumRequest request, CancellationToken cancellationToken)
    {
        QuorumStatus? status = null;
        try
        {
            status = quorum.DescribeQuorum();
        }
        catch (NotControllerException) when (!controllerListener)
        {
            return await controller.SendAsync<DescribeQuorumResponse>(request, cancellationToken).ConfigureAwait(false);
        }
        catch (NotControllerException)
        {
            // Answered per partition below.
        }

        var response = new DescribeQuorumResponse { ErrorMessage = null };
        foreach (var topic in request.Topics)
        {
            var result = new DescribeQuorumResponse.TopicData { TopicName = topic.TopicName };
            response.Topics.Add(result);
            foreach (var partition in topic.Partitions)
            {
                if (topic.TopicName != MetadataLog.Topic || partition.PartitionIndex != 0)
                {
                    result.Partitions.Add(Error(partition.PartitionIndex, ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition."));
                    continue;
                }

                if (status is null)
                {
                    result.Partitions.Add(Error(0, ErrorCode.NotLeaderOrFollower, $"Node {options.NodeId} is not the leader of the metadata quorum."));
                    continue;
                }

                result.Partitions.Add(new DescribeQuorumResponse.PartitionData
                {
                    PartitionIndex = 0,
                    ErrorMessage = null,
                    LeaderId = status.LeaderId,
                    LeaderEpoch = (int)status.LeaderEpoch,
                    HighWatermark = status.HighWatermark,
                    CurrentVoters = [.. status.Voters.Select(v => new DescribeQuorumResponse.ReplicaState
                    {
                        ReplicaId = v.Id,
                        LogEndOffset = v.LogEndOffset,
                        LastFetchTimestamp = v.LastFetchTimestamp,
                        LastCaughtUpTimestamp = v.LastCaughtUpTimestamp,
                    })],
                });
                if (context.ApiVersion >= 2 && response.Nodes.Count == 0)
                {
                    response.Nodes.AddRange(Nodes());
                }
            }
        }

        return response;
    }

    /// <summary>The voters' endpoints: their controller listeners, or this node's client listener when it has none.</summary>
    private IEnumerable<DescribeQuorumResponse.Node> Nodes()
    {
        if (options.ControllerListener is null)
        {
            return [new DescribeQuorumResponse.Node { NodeId = identity.NodeId, Listeners = [new() { Name = options.ListenerName, Host = identity.Host, Port = (ushort)identity.Port }] }];
        }

        return ClusterView.Controllers(options, ports).Select(c => new DescribeQuorumResponse.Node
        {
            NodeId = c.Id,
            Listeners = [new() { Name = options.ControllerListenerName!, Host = c.Host, Port = (ushort)c.Port }],
        });
    }

    private static DescribeQuorumResponse.PartitionData Error(int partition, ErrorCode code, string message) =>
        new() { PartitionIndex = partition, ErrorCode = (short)code, ErrorMessage = message };
}
