// DescribeCluster (key 60), versions 0-2.
//   The brokers (registered and unfenced, at their endpoint for this listener, with racks), cluster id and
//   controller. v1 adds the endpoint type (1 = brokers; asking for controllers on a broker listener is
//   MISMATCHED_ENDPOINT_TYPE); v2 lists fenced brokers too when asked (IncludeFencedBrokers), marked IsFenced.
//   On the CONTROLLER listener (KIP-919, what an admin client with bootstrap.controllers asks first) it answers
//   endpoint type 2: the controllers (the quorum's voters) at their controller endpoints, the active one as
//   ControllerId; asking it for brokers is MISMATCHED_ENDPOINT_TYPE.
using Osprey.Broker.Control;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeClusterHandler(BrokerIdentity identity, IMetadataQuorum metadata, BrokerOptions options, BrokerServerPorts ports, bool controllerListener = false)
    : RequestHandler<DescribeClusterRequest, DescribeClusterResponse>
{
    private const sbyte BrokerEndpoints = 1;
    private const sbyte ControllerEndpoints = 2;

    public override ApiKey ApiKey => ApiKey.DescribeCluster;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override ValueTask<DescribeClusterResponse> HandleAsync(RequestContext context, DescribeClusterRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var asked = context.ApiVersion >= 1 ? request.EndpointType : BrokerEndpoints;
        if (controllerListener)
        {
            var controllers = new DescribeClusterResponse { ClusterId = identity.ClusterId, EndpointType = ControllerEndpoints, ControllerId = metadata.ActiveControllerId ?? -1 };
            if (asked != ControllerEndpoints)
            {
                controllers.ErrorCode = (short)ErrorCode.MismatchedEndpointType;
                controllers.ErrorMessage = "The request was sent to an endpoint of type CONTROLLER, but we wanted an endpoint of type BROKER";
                return ValueTask.FromResult(controllers);
            }

            foreach (var (id, host, port) in ClusterView.Controllers(options, ports))
            {
                controllers.Brokers.Add(new DescribeClusterResponse.DescribeClusterBroker { BrokerId = id, Host = host, Port = port });
            }

            return ValueTask.FromResult(controllers);
        }

        var response = new DescribeClusterResponse { ClusterId = identity.ClusterId, ControllerId = ClusterView.ControllerIdForClients(image, metadata) };
        if (asked != BrokerEndpoints)
        {
            response.ErrorCode = (short)ErrorCode.MismatchedEndpointType;
            response.ErrorMessage = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER";
            return ValueTask.FromResult(response);
        }

        foreach (var (broker, endpoint) in ClusterView.Brokers(image, options.ListenerName, includeFenced: context.ApiVersion >= 2 && request.IncludeFencedBrokers))
        {
            response.Brokers.Add(new DescribeClusterResponse.DescribeClusterBroker { BrokerId = broker.Id, Host = endpoint.Host, Port = endpoint.Port, Rack = broker.Rack, IsFenced = broker.Fenced });
        }

        return ValueTask.FromResult(response);
    }
}
