using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey cluster describe</c>: the cluster id, the controller and the brokers (racks, fenced ones marked).</summary>
internal static class ClusterCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var output = ClientCommand.Output();
        var describe = new Command("describe", "Show the cluster id, controller and brokers.");
        var command = new Command("cluster", "Inspect the cluster.") { bootstrap, output };
        command.Subcommands.Add(describe);
        describe.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var cluster = await client.DescribeClusterAsync(cancellationToken);
            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(new { clusterId = cluster.ClusterId, controllerId = cluster.ControllerId, brokers = cluster.Brokers.Select(b => new { nodeId = b.NodeId, host = b.Host, port = b.Port, rack = b.Rack, fenced = b.Fenced, controller = b.NodeId == cluster.ControllerId }) });
                return 0;
            }

            AnsiConsole.MarkupLine($"Cluster id [bold]{Markup.Escape(cluster.ClusterId ?? "(none)")}[/], controller {cluster.ControllerId}");
            var table = new OutputTable().AddColumns("Node", "Host", "Port", "Rack", "State");
            foreach (var broker in cluster.Brokers.OrderBy(b => b.NodeId))
            {
                var state = broker.Fenced ? "fenced" : broker.NodeId == cluster.ControllerId ? "serving, controller" : "serving";
                table.AddRow(broker.NodeId.ToString(CultureInfo.InvariantCulture), Markup.Escape(broker.Host), broker.Port.ToString(CultureInfo.InvariantCulture), Markup.Escape(broker.Rack ?? ""), state);
            }

            table.Write();
            return 0;
        }));
        return command;
    }
}
