using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Confluent.Kafka;
using Osprey.Broker.Tests;
using Osprey.LoadKit;

namespace Osprey.Cli.Tests;

public class BenchCliTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ProduceWritesTheRecordsAndConsumeReadsThemBack()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        var json = Path.Combine(Path.GetTempPath(), $"osprey-bench-{Guid.NewGuid():N}.json");
        try
        {
            var produced = await CliRunner.RunAsync(null, "bench", "produce", "-b", b, "-t", "load", "-n", "30000", "-s", "64", "-p", "3", "--batch-bytes", "16384", "--acks", "all", "--json", json);
            Assert.True(produced.ExitCode == 0, produced.Stderr);
            Assert.Matches(@"run 1  produce\s+30,000 records\s+[\d,]+ records/s\s+[\d.]+ MB/s .*\(0 errors\)", produced.Stdout);

            // The records are really there: Confluent.Kafka sees 30,000 of 64 bytes over the three partitions.
            using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = b, GroupId = "check" }).Build();
            long total = 0;
            for (var p = 0; p < 3; p++)
            {
                var offsets = consumer.QueryWatermarkOffsets(new TopicPartition("load", p), TimeSpan.FromSeconds(10));
                Assert.True(offsets.High > 0, $"partition {p} got no records");
                total += offsets.High - offsets.Low;
            }

            Assert.Equal(30_000, total);
            var run = Assert.Single(JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken)).RootElement.EnumerateArray());
            Assert.Equal((30_000, 30_000L * 64), (run.GetProperty("records").GetInt64(), run.GetProperty("bytes").GetInt64()));

            var consumed = await CliRunner.RunAsync(null, "bench", "consume", "-b", b, "-t", "load", "-n", "30000", "-s", "64", "--consumers", "2", "--runs", "2");
            Assert.True(consumed.ExitCode == 0, consumed.Stderr);
            Assert.Matches(@"run 2  consume\s+30,000 records", consumed.Stdout);
            Assert.Contains("median of 2  consume", consumed.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("filling", consumed.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task EndToEndMeasuresEveryRecordSent()
    {
        await using var broker = await TestBroker.StartAsync();
        var result = await CliRunner.RunAsync(null, "bench", "e2e", "-b", broker.Bootstrap, "--rate", "400", "--warmup", "0.5", "--duration", "1");
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);

        // 400/s for 1.5 s: 600 records sent, all received, percentiles printed in order.
        var line = Assert.Single(result.Stdout.Split('\n'), l => l.StartsWith("run 1", StringComparison.Ordinal));
        Assert.Matches(@"e2e\s+600 records  p50 [\d.]+  p95 [\d.]+  p99 [\d.]+  p99\.9 [\d.]+  max [\d.]+ ms; acked p50 [\d.]+  p99 [\d.]+ ms  \(0 errors\)", line);
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData("--records", "0", "--records must be above 0")]
    [InlineData("--rate", "-5", "--rate must not be negative")]
    public async Task BadSettingsAreRefusedWithAMessage(string option, string value, string message)
    {
        var result = await CliRunner.RunAsync(null, "bench", "produce", "-b", "127.0.0.1:1", option, value);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void BrokerProcessFindsTheListenerAndItsMemory()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Assert.Equal(Environment.ProcessId, BrokerProcess.FindListener(port));
        Assert.True(BrokerProcess.ResidentBytes(Environment.ProcessId) > 1024 * 1024);
        listener.Stop();
        Assert.Null(BrokerProcess.FindListener(port));
    }

    [Fact]
    public void PacerSpacesDueTimesByTheRate()
    {
        var pacer = new RatePacer(2000, startTimestamp: 1_000);
        var tick = System.Diagnostics.Stopwatch.Frequency / 2000.0;
        Assert.Equal(1_000, pacer.DueTime(0));
        Assert.Equal(1_000 + (long)(1000 * tick), pacer.DueTime(1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RatePacer(0));
    }
}
