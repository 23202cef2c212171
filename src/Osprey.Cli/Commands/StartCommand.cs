using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Osprey.Broker;
using Osprey.Broker.Config;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey start</c>: runs a node until SIGINT/SIGTERM, then shuts down cleanly (on a cluster, after a controlled
/// shutdown). By default a single node; Kafka's KRaft settings (process.roles, controller.quorum.voters, a CONTROLLER
/// listener) make it a node of a cluster.
/// </summary>
internal static class StartCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string?>("--data-dir") { Description = "Where the logs live (log.dirs; default ./data)." };
        var listeners = new Option<string?>("--listeners") { Description = "PLAINTEXT://HOST:PORT to listen on (default PLAINTEXT://127.0.0.1:9092)." };
        var advertised = new Option<string?>("--advertised-listeners") { Description = "PLAINTEXT://HOST:PORT clients are told to use." };
        var nodeId = new Option<int?>("--node-id") { Description = "This broker's node id (default 1)." };
        var configFile = new Option<string?>("--config") { Description = "A Kafka-style properties file of broker settings." };
        var sets = new Option<string[]>("--set") { Description = "key=value: any broker setting; repeatable; wins over --config and OSPREY_<KEY> variables.", AllowMultipleArgumentsPerToken = false };
        var logFormat = new Option<string>("--log-format") { Description = "How the broker logs to stderr: text (one readable line each) or json (one JSON object per line).", DefaultValueFactory = _ => "text" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var command = new Command("start", "Run an Osprey node: a single-node broker by default, or a node of a cluster with Kafka's KRaft settings (Ctrl+C stops it cleanly).") { dataDir, listeners, advertised, nodeId, configFile, sets, logFormat };
        command.SetAction(async (result, cancellationToken) =>
        {
            BrokerOptions options;
            try
            {
                var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                    .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
                var config = BrokerConfig.Load(result.GetValue(configFile), environment, result.GetValue(sets) ?? [])
                    .With(
                        ("log.dirs", result.GetValue(dataDir)),
                        ("listeners", result.GetValue(listeners)),
                        ("advertised.listeners", result.GetValue(advertised)),
                        ("node.id", result.GetValue(nodeId)?.ToString(CultureInfo.InvariantCulture)));
                foreach (var warning in config.Warnings)
                {
                    Console.Error.WriteLine($"osprey: warning: {warning}");
                }

                options = BrokerOptions.FromConfig(config);
            }
            catch (BrokerConfigException e)
            {
                Console.Error.WriteLine($"osprey: cannot start: {e.Message}");
                return 2;
            }

            // As the JVM does for Kafka: the soft descriptor limit up to the hard one (shells often default to 1,024).
            Storage.NativeFileSystem.RaiseOpenFileLimit();
            BrokerServer server;
            try
            {
                server = await BrokerServer.StartAsync(options, new BrokerLogging(result.GetValue(logFormat)!), cancellationToken);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException or Metadata.DataDirectoryMismatchException or Storage.KafkaStorageException)
            {
                Console.Error.WriteLine($"osprey: cannot start: {e.Message}");
                return 1;
            }

            var version = typeof(StartCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"Osprey {version}");
            Console.WriteLine($"  listening on  {options.Listener.Address}:{server.Port} (advertised as {server.Identity.Host}:{server.Identity.Port})");
            Console.WriteLine($"  data dir      {Path.GetFullPath(options.DataDirectory)}");
            Console.WriteLine($"  node id       {options.NodeId}");
            Console.WriteLine($"  cluster id    {server.Identity.ClusterId}");
            Console.WriteLine("Press Ctrl+C to stop.");

            try
            {
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, server.ShutdownRequested);
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            Console.WriteLine("osprey: stopping...");
            await server.DisposeAsync();
            if (server.Logs.CloseFailures is [var first, ..] failures)
            {
                // Acknowledged writes were fsynced before their answers; what could not be closed is recovered at the
                // next start (no clean-shutdown marker was written).
                Console.Error.WriteLine($"osprey: stopped; {failures.Count} log(s) could not be closed cleanly and will be recovered at the next start. First: {first.Message}");
                return 0;
            }

            Console.WriteLine("osprey: stopped cleanly.");
            return 0;
        });
        return command;
    }
}
