using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Osprey.Broker.Tests;

/// <summary>
/// The issue's proof with real processes: three `osprey start` nodes form a cluster; an idempotent acks=all producer
/// writes to an RF=3 topic with min.insync.replicas=2 while the test kills a leader with SIGKILL (and restarts it) and
/// pauses another with SIGSTOP past its session (and resumes it). Afterwards every acknowledged record is there exactly
/// once and in order, the ISR is whole, every replica's log is byte-identical, and with two nodes down acks=all
/// fails rather than succeeds.
/// </summary>
public class ClusterProcessFaultTests
{
    private const string Topic = "faults";
    private const int Partitions = 3;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task AcknowledgedRecordsSurviveLeadersKilledAndPausedAndTwoNodesDownRefuseAcksAll()
    {
        await using var cluster = await ProcessCluster.StartAsync(3);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = Topic,
            NumPartitions = Partitions,
            ReplicationFactor = 3,
            Configs = new Dictionary<string, string> { ["min.insync.replicas"] = "2" },
        }]);
        await WaitForWholeIsrAsync(admin);

        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(int Partition, long Offset, string Value)>();
        var failed = 0;
        using var stopProducing = new CancellationTokenSource();
        var producing = Task.Run(async () =>
        {
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
            {
                BootstrapServers = cluster.Bootstrap,
                EnableIdempotence = true,
                Acks = Acks.All,
                LingerMs = 5,
                MessageTimeoutMs = 120_000,
                RetryBackoffMs = 100,
            }).Build();
            var sends = new List<Task>();
            for (var i = 0; !stopProducing.IsCancellationRequested; i++)
            {
                var value = $"v{i}";
                sends.Add(producer.ProduceAsync(new TopicPartition(Topic, i % Partitions), new Message<Null, string> { Value = value }, CancellationToken.None).ContinueWith(
                    t =>
                    {
                        if (t.IsCompletedSuccessfully)
                        {
                            acknowledged.Add((t.Result.Partition.Value, t.Result.Offset.Value, value));
                        }
                        else
                        {
                            Interlocked.Increment(ref failed);
                        }
                    },
                    TaskScheduler.Default));
                await Task.Delay(3, CancellationToken.None);
            }

            await Task.WhenAll(sends);
        }, Ct);

        // The faults, one after another, each healed before the next.
        await Task.Delay(1500, Ct);
        var killed = LeaderOf(admin, 0);
        cluster.Kill(killed);
        await Task.Delay(3000, Ct);
        await cluster.RestartAsync(killed);
        await WaitForWholeIsrAsync(admin);

        var paused = LeaderOf(admin, 1);
        cluster.Signal(paused, "STOP");
        await Task.Delay(5000, Ct); // past broker.session.timeout.ms: it is fenced and its leaderships move
        cluster.Signal(paused, "CONT");
        await WaitForWholeIsrAsync(admin);

        cluster.Kill(LeaderOf(admin, 2));
        await Task.Delay(2000, Ct);
        await cluster.RestartAsync(cluster.Stopped.Single());
        await WaitForWholeIsrAsync(admin);
        await Task.Delay(1000, Ct);

        await stopProducing.CancelAsync();
        await producing;
        await WaitForWholeIsrAsync(admin);
        Assert.Equal(0, failed);
        Assert.True(acknowledged.Count > 500, $"only {acknowledged.Count} records were acknowledged");

        // Every acknowledged record, exactly once, at its offset, in the order it was sent per partition.
        var read = ReadAll(cluster.Bootstrap);
        foreach (var partition in Enumerable.Range(0, Partitions))
        {
            var acked = acknowledged.Where(a => a.Partition == partition).OrderBy(a => a.Offset).ToList();
            var log = read[partition];
            Assert.All(acked, a => Assert.Equal(a.Value, log.GetValueOrDefault(a.Offset)));
            var values = log.OrderBy(r => r.Key).Select(r => r.Value).ToList();
            Assert.Equal(values.Count, values.Distinct().Count());
            Assert.Equal(values.OrderBy(v => int.Parse(v[1..], CultureInfo.InvariantCulture)), values);
        }

        // Every replica holds the same bytes once all are in sync and stopped cleanly.
        await cluster.StopAllAsync();
        foreach (var partition in Enumerable.Range(0, Partitions))
        {
            var logs = cluster.Ids.Select(id => LogBytes(cluster.DataDirectory(id), partition)).ToList();
            Assert.All(logs, l => Assert.Equal(logs[0], l));
        }

        // Two of three nodes down: acks=all does not succeed.
        await Task.WhenAll(cluster.Ids.Select(cluster.RestartAsync)); // together: each waits for a quorum to serve
        await WaitForWholeIsrAsync(admin);
        cluster.Kill(2);
        cluster.Kill(3);
        using var lonely = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Bootstrap, Acks = Acks.All, MessageTimeoutMs = 8000 }).Build();
        var refused = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => lonely.ProduceAsync(Topic, new Message<Null, string> { Value = "must not be acknowledged" }, Ct));
        Assert.Contains(refused.Error.Code, new[] { ErrorCode.NotEnoughReplicas, ErrorCode.NotEnoughReplicasAfterAppend, ErrorCode.Local_MsgTimedOut, ErrorCode.RequestTimedOut });
        cluster.Passed = true;
    }

    private static int LeaderOf(IAdminClient admin, int partition) =>
        admin.GetMetadata(Topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Single(p => p.PartitionId == partition).Leader;

    private static async Task WaitForWholeIsrAsync(IAdminClient admin)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var seen = "";
        while (true)
        {
            try
            {
                var topic = admin.GetMetadata(Topic, TimeSpan.FromSeconds(5)).Topics.Single();
                seen = $"{topic.Error.Code}: " + string.Join("; ", topic.Partitions.Select(p => $"{p.PartitionId} leader {p.Leader} isr {string.Join(",", p.InSyncReplicas)}"));
                if (topic.Error.Code == ErrorCode.NoError && topic.Partitions.Count == Partitions && topic.Partitions.All(p => p.InSyncReplicas.Length == 3 && p.Leader > 0))
                {
                    return;
                }
            }
            catch (KafkaException e)
            {
                seen = e.Message; // a node that is starting: ask again
            }

            Assert.True(DateTime.UtcNow < deadline, $"the ISR did not become whole again within 60 s; last seen: {seen}");
            await Task.Delay(200, Ct);
        }
    }

    /// <summary>Each partition's records by offset, read from its start to its end.</summary>
    private static Dictionary<int, Dictionary<long, string>> ReadAll(string bootstrap)
    {
        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "unused",
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(Topic, p, Offset.Beginning)));
        var read = Enumerable.Range(0, Partitions).ToDictionary(p => p, _ => new Dictionary<long, string>());
        var ended = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (ended.Count < Partitions && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { } result)
            {
                continue;
            }

            if (result.IsPartitionEOF)
            {
                ended.Add(result.Partition.Value);
            }
            else
            {
                read[result.Partition.Value][result.Offset.Value] = result.Message.Value;
            }
        }

        Assert.Equal(Partitions, ended.Count);
        return read;
    }

    /// <summary>A partition's log segments on one node, concatenated in offset order.</summary>
    private static byte[] LogBytes(string dataDirectory, int partition) =>
        [.. Directory.GetFiles(Path.Combine(dataDirectory, $"{Topic}-{partition}"), "*.log").Order(StringComparer.Ordinal).SelectMany(File.ReadAllBytes)];

    /// <summary>Node processes of one cluster (`./osprey start`, combined nodes that are all voters) on loopback ports.</summary>
    private sealed class ProcessCluster : IAsyncDisposable
    {
        private readonly string _root = Path.Combine(Path.GetTempPath(), "osprey-process-cluster-" + Guid.NewGuid().ToString("N"));

        /// <summary>The nodes' logs (kept when the test fails: the directory is removed only after a pass).</summary>
        public bool Passed { get; set; }
        private readonly Dictionary<int, (int Client, int Controller)> _ports = [];
        private readonly Dictionary<int, Process?> _nodes = [];

        public IEnumerable<int> Ids => _ports.Keys;

        public IEnumerable<int> Stopped => _nodes.Where(n => n.Value is null).Select(n => n.Key);

        public string Bootstrap => string.Join(",", _ports.Values.Select(p => $"127.0.0.1:{p.Client}"));

        public string DataDirectory(int id) => Path.Combine(_root, $"node-{id}");

        public static async Task<ProcessCluster> StartAsync(int nodes)
        {
            var cluster = new ProcessCluster();
            for (var id = 1; id <= nodes; id++)
            {
                cluster._ports[id] = (TestCluster.FreePort(), TestCluster.FreePort());
            }

            // The launcher builds the CLI when it is stale: once, before three nodes start at the same moment.
            using (var version = OspreyProcessTests.Launch(["version"]))
            {
                _ = version.StandardOutput.ReadToEndAsync(CancellationToken.None);
                _ = version.StandardError.ReadToEndAsync(CancellationToken.None);
                await version.WaitForExitAsync(Ct);
            }

            try
            {
                await Task.WhenAll(cluster.Ids.Select(cluster.RestartAsync));
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }

            return cluster;
        }

        public async Task RestartAsync(int id)
        {
            var voters = string.Join(",", _ports.Select(p => $"{p.Key}@127.0.0.1:{p.Value.Controller}"));
            var (client, controller) = _ports[id];
            _nodes[id] = await OspreyProcessTests.StartWithAsync([
                "start",
                "--data-dir", DataDirectory(id),
                "--node-id", id.ToString(CultureInfo.InvariantCulture),
                "--listeners", $"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}",
                "--set", "process.roles=broker,controller",
                "--set", "controller.listener.names=CONTROLLER",
                "--set", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "--set", $"controller.quorum.voters={voters}",
                "--set", "broker.session.timeout.ms=3000",
                "--set", "broker.heartbeat.interval.ms=300",
                "--set", "replica.lag.time.max.ms=5000"], logFile: Path.Combine(_root, $"node-{id}.log"));
        }

        public void Kill(int id)
        {
            if (_nodes[id] is { } process)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                process.Dispose();
                _nodes[id] = null;
            }
        }

        public void Signal(int id, string signal)
        {
            using var kill = Process.Start("kill", [$"-{signal}", _nodes[id]!.Id.ToString(CultureInfo.InvariantCulture)])!;
            kill.WaitForExit();
            Assert.Equal(0, kill.ExitCode);
        }

        /// <summary>SIGTERM to every node at once (each does its controlled shutdown), then waits for them.</summary>
        public async Task StopAllAsync()
        {
            var running = _nodes.Where(n => n.Value is not null).ToList();
            foreach (var (id, _) in running)
            {
                Signal(id, "TERM");
            }

            foreach (var (id, process) in running)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(60));
                await process!.WaitForExitAsync(timeout.Token);
                Assert.Equal(0, process.ExitCode);
                process.Dispose();
                _nodes[id] = null;
            }
        }

        public ValueTask DisposeAsync()
        {
            foreach (var id in _nodes.Keys.ToList())
            {
                if (_nodes[id] is { } process)
                {
                    Signal(id, "CONT"); // a paused node must be able to die
                    Kill(id);
                }
            }

            if (Passed && Directory.Exists(_root))
            {
                Directory.Delete(_root, recursive: true);
            }
            else if (Directory.Exists(_root))
            {
                TestContext.Current.TestOutputHelper?.WriteLine($"The nodes' data and logs are kept in {_root}");
            }

            return ValueTask.CompletedTask;
        }
    }
}
