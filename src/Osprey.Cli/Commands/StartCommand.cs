using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Reflection;
using Osprey.Broker;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey start</c>: runs a single-node broker until SIGINT/SIGTERM, then shuts down cleanly.</summary>
internal static class StartCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir") { Description = "Where the logs live.", DefaultValueFactory = _ => "data" };
        var listeners = new Option<string>("--listeners") { Description = "PLAINTEXT://HOST:PORT to listen on.", DefaultValueFactory = _ => "PLAINTEXT://127.0.0.1:9092" };
        var advertised = new Option<string?>("--advertised-listeners") { Description = "PLAINTEXT://HOST:PORT clients are told to use." };
        var nodeId = new Option<int>("--node-id") { Description = "This broker's node id.", DefaultValueFactory = _ => 1 };
        var command = new Command("start", "Run a single-node Osprey broker (Ctrl+C stops it cleanly).") { dataDir, listeners, advertised, nodeId };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (!TryParseListener(result.GetValue(listeners)!, out var listenHost, out var listenPort, out var error)
                || (result.GetValue(advertised) is { } adv && !TryParseListener(adv, out _, out _, out error)))
            {
                Console.Error.WriteLine(error);
                return 2;
            }

            string? advertisedHost = null;
            int? advertisedPort = null;
            if (result.GetValue(advertised) is { } a && TryParseListener(a, out var ah, out var ap, out _))
            {
                advertisedHost = ah;
                advertisedPort = ap;
            }

            var address = listenHost.Length == 0 ? IPAddress.Any : IPAddress.TryParse(listenHost, out var ip) ? ip : (await Dns.GetHostAddressesAsync(listenHost, cancellationToken)).First();
            var options = new BrokerOptions
            {
                NodeId = result.GetValue(nodeId),
                DataDirectory = result.GetValue(dataDir)!,
                Listener = new IPEndPoint(address, listenPort),
                AdvertisedHost = advertisedHost ?? (listenHost.Length == 0 ? null : listenHost),
                AdvertisedPort = advertisedPort,
            };

            BrokerServer server;
            try
            {
                server = await BrokerServer.StartAsync(options, cancellationToken: cancellationToken);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"osprey: cannot start: {e.Message}");
                return 1;
            }

            var version = typeof(StartCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"Osprey {version}");
            Console.WriteLine($"  listening on  {options.Listener.Address}:{server.Port} (advertised as {server.Identity.Host}:{server.Identity.Port})");
            Console.WriteLine($"  data dir      {Path.GetFullPath(options.DataDirectory)}");
            Console.WriteLine($"  node id       {options.NodeId}");
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
            Console.WriteLine("osprey: stopped cleanly.");
            return 0;
        });
        return command;
    }

    /// <summary>Parses PLAINTEXT://HOST:PORT (an empty host means all interfaces).</summary>
    private static bool TryParseListener(string text, out string host, out int port, out string error)
    {
        host = "";
        port = 0;
        error = "";
        const string Prefix = "PLAINTEXT://";
        if (!text.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            error = $"osprey: listener '{text}' must look like PLAINTEXT://HOST:PORT (only PLAINTEXT is supported so far).";
            return false;
        }

        var rest = text[Prefix.Length..];
        var colon = rest.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
        {
            error = $"osprey: listener '{text}' has no valid port.";
            return false;
        }

        host = rest[..colon].Trim('[', ']');
        return true;
    }
}
