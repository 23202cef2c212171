namespace Osprey.Broker;

/// <summary>Who this broker is to clients: node id, advertised address, cluster id.</summary>
public sealed class BrokerIdentity
{
    public int NodeId { get; init; }

    /// <summary>The cluster id: from meta.properties, or, for a new node of a cluster, learnt from the quorum at start.</summary>
    public string ClusterId { get; set; } = "";

    /// <summary>The advertised host; set once the listener is bound.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The advertised port; set once the listener is bound (port 0 becomes the real one).</summary>
    public int Port { get; set; }

    /// <summary>This process's incarnation of the broker: new at every start, named in its registration.</summary>
    public Guid IncarnationId { get; } = Guid.NewGuid();
}
