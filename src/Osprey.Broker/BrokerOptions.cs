using System.Net;

namespace Osprey.Broker;

/// <summary>The settings the broker runs with (Kafka's names in the comments).</summary>
public sealed record BrokerOptions
{
    /// <summary>node.id.</summary>
    public int NodeId { get; init; } = 1;

    /// <summary>listeners: where to accept connections. Port 0 picks a free port (tests).</summary>
    public IPEndPoint Listener { get; init; } = new(IPAddress.Loopback, 9092);

    /// <summary>advertised.listeners: the host and port clients are told to use; defaults to the bound listener.</summary>
    public string? AdvertisedHost { get; init; }

    public int? AdvertisedPort { get; init; }

    /// <summary>log.dirs.</summary>
    public string DataDirectory { get; init; } = "data";

    /// <summary>socket.request.max.bytes: larger frames are refused before any buffer is allocated.</summary>
    public int SocketRequestMaxBytes { get; init; } = 104_857_600;

    /// <summary>connections.max.idle.ms.</summary>
    public long ConnectionsMaxIdleMs { get; init; } = 600_000;

    /// <summary>How many requests of one connection may be in progress at once (pipelining).</summary>
    public int MaxInFlightRequestsPerConnection { get; init; } = 32;

    /// <summary>auto.create.topics.enable: Metadata requests create the unknown topics they name.</summary>
    public bool AutoCreateTopics { get; init; } = true;

    /// <summary>num.partitions: partitions of a topic created without a count.</summary>
    public int NumPartitions { get; init; } = 1;

    /// <summary>The cluster id reported in Metadata and DescribeCluster.</summary>
    public string ClusterId { get; init; } = "osprey-cluster";
}
