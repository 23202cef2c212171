using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;

namespace Osprey.Broker.Tests;

/// <summary>
/// The real thing: `./osprey start` as its own process, acks=all produce from Confluent.Kafka, SIGKILL, restart,
/// and every acknowledged message is there.
/// </summary>
public class OspreyProcessTests
{
    [Fact]
    public async Task EveryAcknowledgedMessageSurvivesKillNineOfTheRealProcess()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-process-test-" + Guid.NewGuid().ToString("N"));
        var port = FreePort();
        var bootstrap = $"127.0.0.1:{port}";
        try
        {
            var acknowledged = new List<(int Partition, long Offset, string Value)>();
            using (var broker = await StartAsync(dataDir, port))
            {
                using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, Acks = Acks.All, LingerMs = 2 }).Build();
                var sends = Enumerable.Range(0, 500).Select(i => producer.ProduceAsync("crash-me", new Message<string, string> { Key = $"k{i % 7}", Value = $"value-{i}" }, TestContext.Current.CancellationToken)).ToList();
                foreach (var send in sends)
                {
                    var result = await send;
                    acknowledged.Add((result.Partition.Value, result.Offset.Value, result.Message.Value));
                }

                broker.Kill(entireProcessTree: true); // SIGKILL: no flush, no clean shutdown
                await broker.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            Assert.False(File.Exists(Path.Combine(dataDir, ".kafka_cleanshutdown")));
            using var restarted = await StartAsync(dataDir, port);
            try
            {
                using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "unused", EnableAutoCommit = false }).Build();
                consumer.Assign(new TopicPartitionOffset("crash-me", 0, Offset.Beginning));
                var found = new Dictionary<long, string>();
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (found.Count < acknowledged.Count && DateTime.UtcNow < deadline)
                {
                    if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } message)
                    {
                        found[message.Offset.Value] = message.Message.Value;
                    }
                }

                Assert.All(acknowledged, a => Assert.Equal(a.Value, found.GetValueOrDefault(a.Offset)));
            }
            finally
            {
                restarted.Kill(entireProcessTree: true);
                await restarted.WaitForExitAsync(CancellationToken.None);
            }
        }
        finally
        {
            if (Directory.Exists(dataDir))
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static int FreePortForTests() => FreePort();

    /// <summary>Runs ./osprey start (which builds the CLI first if needed) and waits until it listens.</summary>
    internal static async Task<Process> StartAsync(string dataDir, int port, string[]? extra = null, Dictionary<string, string>? environment = null)
    {
        var process = Launch(["start", "--data-dir", dataDir, "--listeners", $"PLAINTEXT://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", .. extra ?? []], environment);
        // The first start in a fresh clone builds the CLI (Release) while the other test projects run beside it.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                throw new InvalidOperationException("osprey exited: " + await process.StandardError.ReadToEndAsync(timeout.Token));
            }

            if (line.StartsWith("Press Ctrl+C", StringComparison.Ordinal))
            {
                // Keep draining output so the process never blocks on a full pipe.
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
                return process;
            }
        }
    }

    /// <summary>Starts ./osprey with <paramref name="arguments"/> from the repository root, output redirected.</summary>
    internal static Process Launch(string[] arguments, Dictionary<string, string>? environment = null)
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Osprey.slnx")))
        {
            root = root.Parent;
        }

        Assert.NotNull(root);
        var start = new ProcessStartInfo(Path.Combine(root.FullName, "osprey"), arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = root.FullName,
        };
        foreach (var (name, value) in environment ?? [])
        {
            start.Environment[name] = value;
        }

        return Process.Start(start)!;
    }
}
