using System.Globalization;
using System.Net;
using Osprey.Broker.Config;
using Osprey.Metadata;

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

    /// <summary>
    /// Whether this broker's followers fetch from their leaders (always, in a real node). Tests that play a follower
    /// themselves, with raw replica fetches, turn it off.
    /// </summary>
    public bool ReplicaFetchers { get; init; } = true;

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

    /// <summary>process.roles: what this node runs.</summary>
    public NodeRoles Roles { get; init; } = NodeRoles.Broker | NodeRoles.Controller;

    /// <summary>
    /// controller.quorum.voters. Empty on a node that is its own quorum without a controller listener (plain
    /// <c>osprey start</c>): its broker then talks to its controller in-process.
    /// </summary>
    public IReadOnlyList<QuorumVoter> Voters { get; init; } = [];

    /// <summary>True when the quorum has other nodes: this node is part of a cluster (its metadata is replicated by Raft).</summary>
    public bool IsCluster => Voters.Any(v => v.Id != NodeId);

    /// <summary>The first of controller.listener.names: the listener controllers serve and brokers reach them on.</summary>
    public string? ControllerListenerName { get; init; }

    /// <summary>Where this node's controller listener accepts connections (null: it has none).</summary>
    public IPEndPoint? ControllerListener { get; init; }

    /// <summary>The host other nodes are told to reach the controller listener at; defaults to the bound address.</summary>
    public string? ControllerAdvertisedHost { get; init; }

    /// <summary>inter.broker.listener.name: the listener other brokers reach this one on.</summary>
    public string InterBrokerListenerName { get; init; } = "PLAINTEXT";

    /// <summary>broker.rack (null: none).</summary>
    public string? Rack { get; init; }

    /// <summary>broker.heartbeat.interval.ms.</summary>
    public int BrokerHeartbeatIntervalMs => Config.GetInt("broker.heartbeat.interval.ms");

    /// <summary>broker.session.timeout.ms.</summary>
    public int BrokerSessionTimeoutMs => Config.GetInt("broker.session.timeout.ms");

    /// <summary>The options a config describes: listeners, advertised listeners, data directory, node id and quorum from it.</summary>
    public static BrokerOptions FromConfig(BrokerConfig config)
    {
        var nodeId = config.GetInt("node.id");
        if (config.GetInt("broker.id") is var brokerId && brokerId != -1 && brokerId != nodeId)
        {
            throw new BrokerConfigException($"broker.id ({brokerId}) must equal node.id ({nodeId}) when both are set.");
        }

        var protocols = ParseProtocolMap(config.Get("listener.security.protocol.map")!);
        var controllerNames = (config.Get("controller.listener.names") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var listeners = ParseListeners("listeners", config.Get("listeners")!, protocols);
        var quorum = NodeQuorum.Check(config, nodeId, controllerNames, listeners, protocols);
        var client = listeners.Where(l => !controllerNames.Contains(l.Name, StringComparer.OrdinalIgnoreCase)).ToList();
        if (client.Count != 1)
        {
            throw new BrokerConfigException($"Invalid value {config.Get("listeners")} for configuration listeners: exactly one listener for clients is supported so far (controller listeners, named by controller.listener.names, may be added).");
        }

        var (_, listenHost, listenPort) = client[0];
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

        var interBroker = config.Get("inter.broker.listener.name") ?? client[0].Name;
        if (!interBroker.Equals(client[0].Name, StringComparison.OrdinalIgnoreCase))
        {
            throw new BrokerConfigException($"inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are {client[0].Name}");
        }

        return new BrokerOptions
        {
            NodeId = nodeId,
            Listener = new IPEndPoint(Resolve(config, listenHost), listenPort),
            ListenerName = client[0].Name,
            AdvertisedHost = advertisedHost,
            AdvertisedPort = advertisedPort,
            DataDirectory = config.Get("log.dirs") ?? config.Get("log.dir")!,
            Config = config,
            Roles = quorum.Roles,
            Voters = quorum.Voters,
            ControllerListenerName = quorum.ControllerListener?.Name ?? controllerNames.FirstOrDefault(),
            ControllerListener = quorum.ControllerListener is { } c ? new IPEndPoint(Resolve(config, c.Host), c.Port) : null,
            ControllerAdvertisedHost = quorum.ControllerListener is { Host.Length: > 0 } named ? named.Host : null,
            InterBrokerListenerName = client[0].Name,
            Rack = string.IsNullOrEmpty(config.Get("broker.rack")) ? null : config.Get("broker.rack"),
        };
    }

    private static IPAddress Resolve(BrokerConfig config, string host)
    {
        if (host.Length == 0)
        {
            return IPAddress.Any;
        }

        if (IPAddress.TryParse(host, out var address))
        {
            return address;
        }

        try
        {
            return Dns.GetHostAddresses(host).First();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
        {
            throw new BrokerConfigException($"Invalid value {config.Get("listeners")} for configuration listeners: cannot resolve {host}.");
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
