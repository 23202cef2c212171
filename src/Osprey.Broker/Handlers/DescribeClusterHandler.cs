// DescribeCluster (key 60), versions 0-2.
//   The brokers (this node), cluster id and controller. v1 adds the endpoint type (1 = brokers; asking for
//   controllers on a broker listener is MISMATCHED_ENDPOINT_TYPE); v2 adds fenced brokers (none on a single node).
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeClusterHandler(BrokerIdentity identity) : RequestHandler<DescribeClusterRequest, DescribeClusterResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeCluster;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override ValueTask<DescribeClusterResponse> HandleAsync(RequestContext context, DescribeClusterRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeClusterResponse { ClusterId = identity.ClusterId, ControllerId = identity.NodeId };
        if (context.ApiVersion >= 1 && request.EndpointType != 1)
        {
            response.ErrorCode = (short)ErrorCode.MismatchedEndpointType;
            response.ErrorMessage = "This listener serves brokers (endpoint type 1) only.";
            return ValueTask.FromResult(response);
        }

        response.Brokers.Add(new DescribeClusterResponse.DescribeClusterBroker { BrokerId = identity.NodeId, Host = identity.Host, Port = identity.Port });
        return ValueTask.FromResult(response);
    }
}
