using Osprey.Metadata;

namespace Osprey.Broker.Control;

/// <summary>The cluster as clients are told of it (Metadata, DescribeCluster): brokers from the image, not this node alone.</summary>
public static class ClusterView
{
    /// <summary>
    /// The brokers clients may use: registered, unfenced, and reachable on <paramref name="listenerName"/> (the
    /// listener the request came in on), as Kafka lists them.
    /// </summary>
    public static IEnumerable<(BrokerImage Broker, BrokerEndpoint Endpoint)> Brokers(ClusterImage image, string listenerName, bool includeFenced = false)
    {
        foreach (var broker in image.Brokers.Values)
        {
            if ((!broker.Fenced || includeFenced) && broker.Endpoints.FirstOrDefault(e => e.Name.Equals(listenerName, StringComparison.OrdinalIgnoreCase)) is { } endpoint)
            {
                yield return (broker, endpoint);
            }
        }
    }

    /// <summary>
    /// The controller id clients are given: the active controller when it is a broker clients can reach; otherwise an
    /// unfenced broker (clients send controller-bound admin requests to it, and it forwards them), as Kafka 4 does.
    /// </summary>
    public static int ControllerIdForClients(ClusterImage image, IMetadataQuorum quorum) =>
        quorum.ActiveControllerId is { } active && image.Brokers.TryGetValue(active, out var broker) && !broker.Fenced ? active
            : image.Brokers.Values.FirstOrDefault(b => !b.Fenced)?.Id ?? -1;

    /// <summary>
    /// The controllers at their controller endpoints: the voters, or this node alone at its controller listener (at
    /// the port it really bound).
    /// </summary>
    public static IReadOnlyList<(int Id, string Host, int Port)> Controllers(BrokerOptions options, BrokerServerPorts ports) =>
        options.Voters.Count > 0
            ? [.. options.Voters.Select(v => (v.Id, v.Host, v.Port))]
            : options.ControllerListener is { } listener
                ? [(options.NodeId, options.ControllerAdvertisedHost ?? BrokerServer.HostOf(listener), ports.Controller ?? listener.Port)]
                : [];
}
