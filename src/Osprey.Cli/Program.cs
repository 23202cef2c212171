using System.CommandLine;
using Osprey.Cli.Commands;

namespace Osprey.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("Osprey: an event-streaming platform that speaks the Apache Kafka protocol.")
        {
            VersionCommand.Create(),
            ApisCommand.Create(),
            StartCommand.Create(),
            TopicsCommand.Create(),
            ProduceCommand.Create(),
            ConsumeCommand.Create(),
            ConfigsCommand.Create(),
            GroupsCommand.Create(),
            TransactionsCommand.Create(),
            ClusterCommand.Create(),
            BenchCommand.Create(),
        };
        return root.Parse(args).InvokeAsync().GetAwaiter().GetResult();
    }
}
