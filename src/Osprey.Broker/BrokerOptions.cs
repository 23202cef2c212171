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

    /// <summary>The name of the listener clients connect to (PLAINTEXT unless the config names it otherwise).</summary>
    public string ListenerName { get; init; } = "PLAINTEXT";

    /// <summary>advertised.listeners: the host and port clients are told to use; defaults to the bound listener.</summary>
    public string? AdvertisedHost { get; init; }

    public int? AdvertisedPort { get; init; }

    /// <summary>log.dirs (or log.dir).</summary>
    public string DataDirectory { get; init; } = "data";

    /// <summary>How many requests of one connection may be in progress at once (pipelining).</summary>
    public int MaxInFlightRequestsPerConnection { get; init; } = 32;

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
        var nodeId = config.GetInt("node.id");
        if (config.GetInt("broker.id") is var brokerId && brokerId != -1 && brokerId != nodeId)
        {
            throw new BrokerConfigException($"broker.id ({brokerId}) must equal node.id ({nodeId}) when both are set.");
        }

        CheckSingleNode(config, nodeId);
        var protocols = ParseProtocolMap(config.Get("listener.security.protocol.map")!);
        var controllerNames = (config.Get("controller.listener.names") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var listeners = ParseListeners("listeners", config.Get("listeners")!, protocols);
        var client = listeners.Where(l => !controllerNames.Contains(l.Name, StringComparer.OrdinalIgnoreCase)).ToList();
        if (client.Count != 1)
        {
            throw new BrokerConfigException($"Invalid value {config.Get("listeners")} for configuration listeners: exactly one listener for clients is supported so far (controller listeners, named by controller.listener.names, may be added).");
        }

        var (_, listenHost, listenPort) = client[0];
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
            var same = ParseListeners("advertised.listeners", advertised, protocols).Where(l => l.Name.Equals(client[0].Name, StringComparison.OrdinalIgnoreCase)).ToList();
            if (same.Count > 0)
            {
                (advertisedHost, advertisedPort) = (same[0].Host, same[0].Port);
            }
        }

        return new BrokerOptions
        {
            NodeId = nodeId,
            Listener = new IPEndPoint(address, listenPort),
            ListenerName = client[0].Name,
            AdvertisedHost = advertisedHost,
            AdvertisedPort = advertisedPort,
            DataDirectory = config.Get("log.dirs") ?? config.Get("log.dir")!,
            Config = config,
        };
    }

    /// <summary>
    /// A Kafka KRaft configuration for one combined node (process.roles broker,controller, a quorum of this node
    /// alone) runs as it would on Kafka. A quorum naming other nodes, or a node that is only a broker or only a
    /// controller, would run differently here (alone), so it stops the start until clustering exists.
    /// </summary>
    private static void CheckSingleNode(BrokerConfig config, int nodeId)
    {
        var roles = config.Get("process.roles")!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (!roles.Contains("broker") || !roles.Contains("controller"))
        {
            throw new BrokerConfigException($"process.roles={config.Get("process.roles")}: Osprey runs as one combined broker and controller (process.roles=broker,controller) until clustering is supported.");
        }

        if (config.Get("controller.quorum.voters") is { } voters)
        {
            foreach (var voter in voters.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var at = voter.IndexOf('@', StringComparison.Ordinal);
                if (at <= 0 || !int.TryParse(voter[..at], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                {
                    throw new BrokerConfigException($"Invalid value {voters} for configuration controller.quorum.voters: each voter must look like ID@HOST:PORT.");
                }

                if (id != nodeId)
                {
                    throw new BrokerConfigException($"controller.quorum.voters={voters} names node {id}: a quorum of other nodes needs clustering, which Osprey does not support yet; this node ({nodeId}) can only be its own quorum.");
                }
            }
        }

        if (config.Get("controller.quorum.bootstrap.servers") is { } bootstrap
            && bootstrap.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Length > 1)
        {
            throw new BrokerConfigException($"controller.quorum.bootstrap.servers={bootstrap} names several controllers: a quorum of other nodes needs clustering, which Osprey does not support yet.");
        }
    }

    /// <summary>listener.security.protocol.map: listener name to security protocol, e.g. CONTROLLER:PLAINTEXT.</summary>
    private static Dictionary<string, string> ParseProtocolMap(string text)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || colon == entry.Length - 1)
            {
                throw new BrokerConfigException($"Invalid value {text} for configuration listener.security.protocol.map: each entry must look like NAME:PROTOCOL.");
            }

            map[entry[..colon].Trim()] = entry[(colon + 1)..].Trim().ToUpperInvariant();
        }

        return map;
    }

    /// <summary>
    /// Parses NAME://HOST:PORT entries (an empty host means all interfaces). A listener whose security protocol is
    /// not PLAINTEXT stops the start: serving it in plain text would expose what its owner meant to protect.
    /// </summary>
    public static IReadOnlyList<(string Name, string Host, int Port)> ParseListeners(string setting, string text, IReadOnlyDictionary<string, string>? protocols = null)
    {
        protocols ??= ParseProtocolMap("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT");
        var result = new List<(string, string, int)>();
        foreach (var entry in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var scheme = entry.IndexOf("://", StringComparison.Ordinal);
            if (scheme <= 0)
            {
                throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: a listener must look like NAME://HOST:PORT, e.g. PLAINTEXT://127.0.0.1:9092.");
            }

            var name = entry[..scheme];
            if (!protocols.TryGetValue(name, out var protocol))
            {
                throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: listener {name} has no security protocol in listener.security.protocol.map.");
            }

            if (protocol != "PLAINTEXT")
            {
                throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: listener {name} uses {protocol}, and Osprey does not support TLS or SASL yet; it will not serve that listener unprotected.");
            }

            var rest = entry[(scheme + 3)..];
            var colon = rest.LastIndexOf(':');
            if (colon < 0 || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            {
                throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: no valid port in {entry}.");
            }

            result.Add((name, rest[..colon].Trim('[', ']'), port));
        }

        if (result.Count == 0)
        {
            throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: no listener.");
        }

        if (result.GroupBy(l => l.Item1, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new BrokerConfigException($"Invalid value {text} for configuration {setting}: listener name {twice.Key} appears more than once.");
        }

        return result;
    }
}
