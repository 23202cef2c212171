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
    [Fact(Timeout = TestLimits.ProcessTimeout)]
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

    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task TwoThousandPartitionsStartWithinADescriptorLimitOf4096AndAShortageIsNamed()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-process-test-" + Guid.NewGuid().ToString("N"));
        var port = FreePort();
        var bootstrap = $"127.0.0.1:{port}";
        try
        {
            using (var broker = await StartAsync(dataDir, port))
            {
                using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "wide", NumPartitions = 2000, ReplicationFactor = 1 }]);
                broker.Kill(entireProcessTree: true);
                await broker.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            // Kafka's three descriptors per partition would need 6,000 and more: Osprey holds one per partition.
            using (var broker = await StartAsync(dataDir, port, descriptorLimit: 4096))
            {
                using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = bootstrap, Acks = Acks.All }).Build();
                var result = await producer.ProduceAsync(new TopicPartition("wide", 1999), new Message<Null, string> { Value = "the last partition" }, TestContext.Current.CancellationToken);
                Assert.Equal(0, result.Offset.Value);
                broker.Kill(entireProcessTree: true);
                await broker.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            // Below what the partitions need, the start fails and says why, not with an unrelated exception.
            using var starved = Launch(["start", "--data-dir", dataDir, "--listeners", $"PLAINTEXT://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}"], descriptorLimit: 1024);
            var errors = starved.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = starved.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            await starved.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(1, starved.ExitCode);
            var message = await errors;
            Assert.Contains("osprey: cannot start: Not enough file descriptors for 2000 partition logs", message, StringComparison.Ordinal);
            Assert.Contains("may have 1024 open (ulimit -n)", message, StringComparison.Ordinal);
            Assert.DoesNotContain("OutOfMemoryException", message, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", message, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(dataDir))
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }

    /// <summary>
    /// The broker logs through Microsoft.Extensions.Logging to stderr; with --log-format json every line is one JSON
    /// object, and the start-up (with what it opened), topic creation and deletion are among them.
    /// </summary>
    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task WithLogFormatJsonTheBrokerLogsOneJsonObjectPerLine()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-process-test-" + Guid.NewGuid().ToString("N"));
        var port = FreePort();
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var broker = Launch(["start", "--data-dir", dataDir, "--listeners", $"PLAINTEXT://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--log-format", "json"]);
        broker.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lines.Enqueue(line);
            }
        };
        broker.BeginErrorReadLine();
        try
        {
            using (var ready = new CancellationTokenSource(TimeSpan.FromMinutes(10)))
            {
                while (await broker.StandardOutput.ReadLineAsync(ready.Token) is { } line && !line.StartsWith("Press Ctrl+C", StringComparison.Ordinal))
                {
                }
            }

            _ = broker.StandardOutput.ReadToEndAsync(CancellationToken.None);
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = $"127.0.0.1:{port}" }).Build())
            {
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "logged", NumPartitions = 3, ReplicationFactor = 1 }]);
                await admin.DeleteTopicsAsync(["logged"]);
            }

            await TestWait.UntilAsync(() => lines.Any(l => l.Contains("Deleted topic logged", StringComparison.Ordinal)));
            // Only the launcher's own "building" line (when the CLI is stale) is not the broker's.
            var entries = lines.Where(l => l.Length > 0 && !l.StartsWith("osprey: building", StringComparison.Ordinal)).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
            Assert.All(entries, e => Assert.True(
                e.TryGetProperty("Timestamp", out _) && e.TryGetProperty("LogLevel", out _) && e.TryGetProperty("Category", out _) && e.TryGetProperty("Message", out _),
                e.GetRawText()));
            string Message(string category, string start) =>
                Assert.Single(entries, e => e.GetProperty("Category").GetString() == category && e.GetProperty("Message").GetString()!.StartsWith(start, StringComparison.Ordinal))
                    .GetProperty("Message").GetString()!;
            Assert.Contains("in a new data directory", Message("Osprey.Broker.Startup", "Opened "), StringComparison.Ordinal);
            Assert.Contains("3 partitions", Message("Osprey.Broker.Topics.TopicCreator", "Created topic logged"), StringComparison.Ordinal);
            Assert.Contains("3 partitions", Message("Osprey.Broker.Handlers.DeleteTopicsHandler", "Deleted topic logged"), StringComparison.Ordinal);
        }
        finally
        {
            broker.Kill(entireProcessTree: true);
            await broker.WaitForExitAsync(CancellationToken.None);
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
    internal static Task<Process> StartAsync(string dataDir, int port, string[]? extra = null, Dictionary<string, string>? environment = null, int? descriptorLimit = null) =>
        StartWithAsync(["start", "--data-dir", dataDir, "--listeners", $"PLAINTEXT://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", .. extra ?? []], environment, descriptorLimit);

    /// <summary>Runs ./osprey with <paramref name="arguments"/> (a start) and waits until it serves.</summary>
    /// <remarks>With <paramref name="logFile"/> the broker's log (stderr) is appended to that file as it comes.</remarks>
    internal static async Task<Process> StartWithAsync(string[] arguments, Dictionary<string, string>? environment = null, int? descriptorLimit = null, string? logFile = null)
    {
        var process = Launch(arguments, environment, descriptorLimit);
        // Drained from the start: a broker that logs much while it starts (a line per recovered partition) would
        // otherwise block on a full pipe before it ever says it is ready.
        var errors = logFile is null ? process.StandardError.ReadToEndAsync(CancellationToken.None) : CopyAsync(process.StandardError, logFile);

        // The first start in a fresh clone builds the CLI (Release) while the other test projects run beside it.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            while (true)
            {
                var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
                if (line is null)
                {
                    await process.WaitForExitAsync(timeout.Token);
                    throw new InvalidOperationException("osprey exited: " + await errors);
                }

                if (line.StartsWith("Press Ctrl+C", StringComparison.Ordinal))
                {
                    // Keep draining output so the process never blocks on a full pipe.
                    _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                    return process;
                }
            }
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }

    private static async Task<string> CopyAsync(StreamReader from, string path)
    {
        await using var to = new StreamWriter(path, append: true) { AutoFlush = true };
        while (await from.ReadLineAsync(CancellationToken.None) is { } line)
        {
            await to.WriteLineAsync(line);
        }

        return $"(the log is in {path})";
    }

    /// <summary>
    /// Starts ./osprey with <paramref name="arguments"/> from the repository root, output redirected; with
    /// <paramref name="descriptorLimit"/> under prlimit, soft and hard limit both.
    /// </summary>
    internal static Process Launch(string[] arguments, Dictionary<string, string>? environment = null, int? descriptorLimit = null)
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Osprey.slnx")))
        {
            root = root.Parent;
        }

        Assert.NotNull(root);
        var osprey = Path.Combine(root.FullName, "osprey");
        string[] command = descriptorLimit is { } limit
            ? ["prlimit", $"--nofile={limit.ToString(CultureInfo.InvariantCulture)}:{limit.ToString(CultureInfo.InvariantCulture)}", osprey, .. arguments]
            : [osprey, .. arguments];
        var start = new ProcessStartInfo(command[0], command[1..])
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
