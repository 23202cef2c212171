using System.Globalization;
using System.Net;
using Osprey.Broker.Config;

namespace Osprey.Broker;

/// <summary>
/// What the broker runs with: where it listens and keeps data (resolved from <c>listeners</c>,
/// <c>advertised.listeners</c>, <c>log.dirs</c> and <c>node.id</c>), and the static <see cref="Config"/> behind
/// every other setting.
/// </summary>
public sealed record BrokerOptions
{
    /// <summary>node.id.</summary>
    public int NodeId { get; init; } = 1;

    /// <summary>listeners: where to accept connections. Port 0 picks a free port (tests).</summary>
    public IPEndPoint Listener { get; init; } = new(IPAddress.Loopback, 9092);

    /// <summary>advertised.listeners: the host and port clients are told to use; defaults to the bound listener.</summary>
    public string? AdvertisedHost { get; init; }

    public int? AdvertisedPort { get; init; }

    /// <summary>log.dirs (or log.dir).</summary>
    public string DataDirectory { get; init; } = "data";

    /// <summary>How many requests of one connection may be in progress at once (pipelining).</summary>
    public int MaxInFlightRequestsPerConnection { get; init; } = 32;

    /// <summary>The cluster id reported in Metadata and DescribeCluster.</summary>
    public string ClusterId { get; init; } = "osprey-cluster";

    /// <summary>The clock of the network layer's timeouts and the fetch session cache (tests pass a manual one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The static settings (file, environment, --set) over Kafka's defaults.</summary>
    public BrokerConfig Config { get; init; } = BrokerConfig.Defaults;

    /// <summary>socket.request.max.bytes: larger frames are refused before any buffer is allocated.</summary>
    public int SocketRequestMaxBytes => Config.GetInt("socket.request.max.bytes");

    /// <summary>queued.max.request.bytes: request bytes read but not yet handled, over all connections (≤ 0: no limit).</summary>
    public long QueuedMaxRequestBytes => Config.GetLong("queued.max.request.bytes");

    /// <summary>max.connections: connections beyond it are closed at once.</summary>
    public int MaxConnections => Config.GetInt("max.connections");

    /// <summary>connections.max.idle.ms.</summary>
    public long ConnectionsMaxIdleMs => Config.GetLong("connections.max.idle.ms");

    /// <summary>auto.create.topics.enable: Metadata requests create the unknown topics they name.</summary>
    public bool AutoCreateTopics => Config.GetBool("auto.create.topics.enable");

    /// <summary>num.partitions: partitions of a topic created without a count.</summary>
    public int NumPartitions => Config.GetInt("num.partitions");

    /// <summary>default.replication.factor: the replication factor of a topic created without one.</summary>
    public short DefaultReplicationFactor => (short)Math.Min(short.MaxValue, Config.GetInt("default.replication.factor"));

    /// <summary>delete.topic.enable.</summary>
    public bool DeleteTopicEnable => Config.GetBool("delete.topic.enable");

    /// <summary>The options a config describes: listeners, advertised listeners, data directory and node id from it.</summary>
    public static BrokerOptions FromConfig(BrokerConfig config)
    {
        var (listenHost, listenPort) = ParseListener("listeners", config.Get("listeners")!);
        IPAddress address;
        if (listenHost.Length == 0)
        {
            address = IPAddress.Any;
        }
        else if (!IPAddress.TryParse(listenHost, out address!))
        {
            try
            {
                address = Dns.GetHostAddresses(listenHost).First();
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
            {
                throw new BrokerConfigException($"Invalid value {config.Get("listeners")} for configuration listeners: cannot resolve {listenHost}.");
            }
        }

        string? advertisedHost = listenHost.Length == 0 ? null : listenHost;
        int? advertisedPort = null;
        if (config.Get("advertised.listeners") is { } advertised)
        {
            (advertisedHost, var port) = ParseListener("advertised.listeners", advertised);
            advertisedPort = port;
        }

        var nodeId = config.GetInt("node.id");
        if (config.GetInt("broker.id") is var brokerId && brokerId != -1 && brokerId != nodeId)
        {
            throw new BrokerConfigException($"broker.id ({brokerId}) must equal node.id ({nodeId}) when both are set.");
        }

        return new BrokerOptions
        {
            NodeId = nodeId,
            Listener = new IPEndPoint(address, listenPort),
            AdvertisedHost = advertisedHost,
            AdvertisedPort = advertisedPort,
            DataDirectory = config.Get("log.dirs") ?? config.Get("log.dir")!,
            Config = config,
        };
    }

    /// <summary>Parses PLAINTEXT://HOST:PORT (an empty host means all interfaces).</summary>
    public static (string Host, int Port) ParseListener(string setting, string text)
    {
        const string Prefix = "PLAINTEXT://";
        var entries = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (entries.Length != 1)
        {
            throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: exactly one listener is supported so far.");
        }

        var entry = entries[0];
        if (!entry.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: a listener must look like PLAINTEXT://HOST:PORT (only PLAINTEXT is supported so far).");
        }

        var rest = entry[Prefix.Length..];
        var colon = rest.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: no valid port.");
        }

        return (rest[..colon].Trim('[', ']'), port);
    }
}
