using Osprey.Metadata;

namespace Osprey.Broker.Config;

/// <summary>process.roles: a node is a broker, a controller, or both.</summary>
[Flags]
public enum NodeRoles
{
    Broker = 1,
    Controller = 2,
}

/// <summary>
/// A node's place in the metadata quorum, from Kafka's KRaft settings (process.roles, controller.quorum.voters,
/// controller.quorum.bootstrap.servers, controller.listener.names and the CONTROLLER listener), checked by Kafka's
/// rules and in Kafka's words. Osprey adds one case Kafka does not have: a combined node with neither voters nor a
/// controller listener (plain <c>osprey start</c>) is a quorum of itself, its broker and controller in one process.
/// </summary>
internal sealed record NodeQuorum(NodeRoles Roles, IReadOnlyList<QuorumVoter> Voters, (string Name, string Host, int Port)? ControllerListener)
{
    public static NodeQuorum Check(
        BrokerConfig config,
        int nodeId,
        IReadOnlyList<string> controllerNames,
        IReadOnlyList<(string Name, string Host, int Port)> listeners,
        IReadOnlyDictionary<string, string> protocols)
    {
        var roleNames = (config.Get("process.roles") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (roleNames.Length == 0)
        {
            throw new BrokerConfigException("process.roles must name broker, controller or both: Osprey runs in KRaft mode only (ZooKeeper mode is gone in Kafka 4 too).");
        }

        var roles = (roleNames.Contains("broker") ? NodeRoles.Broker : 0) | (roleNames.Contains("controller") ? NodeRoles.Controller : 0);
        IReadOnlyList<QuorumVoter> voters;
        try
        {
            voters = QuorumVoter.ParseList(config.Get("controller.quorum.voters"));
        }
        catch (FormatException e)
        {
            throw new BrokerConfigException($"Invalid value {config.Get("controller.quorum.voters")} for configuration controller.quorum.voters: {e.Message}");
        }

        var bootstrap = (config.Get("controller.quorum.bootstrap.servers") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var voterIds = "{" + string.Join(", ", voters.Select(v => v.Id)) + "}";
        var controllerListeners = listeners.Where(l => controllerNames.Contains(l.Name, StringComparer.OrdinalIgnoreCase)).ToList();
        // Kafka's stock combined node names no voters and one bootstrap controller (itself); a node with neither is
        // Osprey's embedded default. Both are a quorum of this node alone.
        var alone = voters.Count == 0 && bootstrap.Length <= 1 && roles == (NodeRoles.Broker | NodeRoles.Controller);
        if (!alone && voters.Count == 0 && bootstrap.Length == 0)
        {
            throw new BrokerConfigException("If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of voters.");
        }

        if (roles == NodeRoles.Broker)
        {
            if (voters.Any(v => v.Id == nodeId))
            {
                throw new BrokerConfigException($"If process.roles contains just the 'broker' role, the node id {nodeId} must not be included in the set of voters controller.quorum.voters={voterIds}");
            }

            if (controllerNames.Count == 0)
            {
                throw new BrokerConfigException("controller.listener.names must contain at least one value when running KRaft with just the broker role");
            }

            if (controllerListeners.Count > 0)
            {
                throw new BrokerConfigException("controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role");
            }
        }
        else
        {
            if (voters.Count > 0 && voters.All(v => v.Id != nodeId))
            {
                throw new BrokerConfigException($"If process.roles contains the 'controller' role, the node id {nodeId} must be included in the set of voters controller.quorum.voters={voterIds}");
            }

            if (controllerNames.Any(n => !listeners.Any(l => l.Name.Equals(n, StringComparison.OrdinalIgnoreCase))))
            {
                throw new BrokerConfigException("controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role");
            }

            if (!alone && controllerListeners.Count == 0)
            {
                throw new BrokerConfigException("controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role");
            }

            if (roles == NodeRoles.Controller)
            {
                if (config.Get("advertised.listeners") is not null)
                {
                    throw new BrokerConfigException("The advertised.listeners config must be empty when process.roles=controller");
                }

                if (listeners.Count > controllerListeners.Count)
                {
                    throw new BrokerConfigException("The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller");
                }
            }
        }

        // Every controller listener needs its security protocol named (Kafka checks this after the role rules).
        foreach (var name in controllerNames)
        {
            if (!protocols.ContainsKey(name))
            {
                throw new BrokerConfigException($"Controller listener with name {name} defined in controller.listener.names not found in listener.security.protocol.map (an explicit security mapping for each controller listener is required if listener.security.protocol.map is non-empty, or if there are security protocols other than PLAINTEXT in use)");
            }
        }

        // Checked by Kafka's rules above. A cluster is made of combined nodes that are all voters; nodes of one role
        // (brokers that observe the quorum, controllers without a broker) and a quorum found through bootstrap
        // controllers (KIP-853) are not supported yet.
        if (roles != (NodeRoles.Broker | NodeRoles.Controller))
        {
            throw new BrokerConfigException($"process.roles={config.Get("process.roles")}: a node of one role (a broker observing the quorum, or a controller alone) is something Osprey does not support yet; run combined nodes (process.roles=broker,controller), each a voter in controller.quorum.voters.");
        }

        if (bootstrap.Length > 1)
        {
            throw new BrokerConfigException($"controller.quorum.bootstrap.servers={config.Get("controller.quorum.bootstrap.servers")} names several controllers: a dynamic quorum (KIP-853) is something Osprey does not support yet; name the voters in controller.quorum.voters instead.");
        }

        // The listener of the first controller name that has one.
        var controller = controllerNames
            .SelectMany(n => controllerListeners.Where(l => l.Name.Equals(n, StringComparison.OrdinalIgnoreCase)))
            .Select(l => ((string, string, int)?)l)
            .FirstOrDefault();
        return new NodeQuorum(roles, voters, controller);
    }
}
