using System.CommandLine;
using System.Runtime.InteropServices;
using Osprey.Cli.Commands;

namespace Osprey.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        if (Console.IsOutputRedirected)
        {
            // Piped or redirected: lines are never wrapped at a made-up terminal width (tables go plain, OutputTable).
            Spectre.Console.AnsiConsole.Profile.Width = short.MaxValue;
        }

        var root = new RootCommand("Osprey: an event-streaming platform that speaks the Apache Kafka protocol.")
        {
            VersionCommand.Create(),
            ApisCommand.Create(),
            StartCommand.Create(),
            LocalClusterCommand.Create(),
            TopicsCommand.Create(),
            ProduceCommand.Create(),
            ConsumeCommand.Create(),
            ConfigsCommand.Create(),
            GroupsCommand.Create(),
            TransactionsCommand.Create(),
            ClusterCommand.Create(),
            BenchCommand.Create(),
            ClientCommand.CommandConfig(),
        };

        // Ctrl+C and SIGTERM cancel the command's token and let it finish what it must (a group consumer commits
        // what it printed and leaves its group; the broker closes its logs); the process stays until it has. A second
        // signal ends the process at once. (System.CommandLine's own handling let SIGTERM kill a consumer mid-way.)
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            if (!stop.IsCancellationRequested)
            {
                context.Cancel = true;
                stop.Cancel();
            }
        }

        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        return root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, stop.Token).GetAwaiter().GetResult();
    }
}
