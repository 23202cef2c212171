using System.Globalization;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Osprey.Broker.Tests;

namespace Osprey.Cli.Tests;

public class TopicsCliTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CreateListDescribeAlterDelete()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        var created = await CliRunner.RunAsync(null, "topics", "create", "orders", "--partitions", "2", "--config", "retention.ms=60000", "-b", b);
        Assert.Equal((0, "Created topic 'orders'."), (created.ExitCode, created.Stdout.Trim()));

        var list = await CliRunner.RunAsync(null, "topics", "list", "-b", b, "-o", "json");
        var topic = Assert.Single(JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray());
        Assert.Equal(("orders", 2, 1), (topic.GetProperty("name").GetString(), topic.GetProperty("partitions").GetInt32(), topic.GetProperty("replicationFactor").GetInt32()));

        var altered = await CliRunner.RunAsync(null, "topics", "alter", "orders", "--partitions", "4", "--set", "cleanup.policy=compact", "--delete", "retention.ms", "-b", b);
        Assert.Equal(0, altered.ExitCode);
        var described = JsonDocument.Parse((await CliRunner.RunAsync(null, "topics", "describe", "orders", "-b", b, "-o", "json")).Stdout).RootElement;
        Assert.Equal([0, 1, 2, 3], described.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("partition").GetInt32()));
        Assert.Equal("""{"cleanup.policy":"compact"}""", described.GetProperty("configs").GetRawText());
        Assert.Equal(4, broker.Server.Logs.Logs.Count(l => l.Key.Topic == "orders"));
        Assert.True(broker.Server.Logs.Get("orders", 0)!.Config.Compact);

        var table = await CliRunner.RunAsync(null, "topics", "describe", "orders", "-b", b);
        Assert.Contains("cleanup.policy", table.Stdout, StringComparison.Ordinal);

        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "delete", "orders", "-b", b)).ExitCode);
        Assert.Null(broker.Server.Logs.Get("orders", 0));
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "delete", "orders", "--if-exists", "-b", b)).ExitCode);
    }

    /// <summary>
    /// Piped output is plain, unwrapped lines: a long topic name and its id (in Kafka's base64 form, as Kafka's tools
    /// print it) stay on one line that grep finds (tables wrapped at 80 columns cut them in half).
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PipedOutputIsUnwrappedLinesWithKafkasTopicIds()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        var name = "a-topic-whose-name-is-long-enough-to-wrap-an-eighty-column-table-" + new string('x', 30);
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", name, "--partitions", "3", "-b", b)).ExitCode);
        var id = Osprey.Metadata.MetaProperties.ToKafkaString(broker.Server.Services.GetService(typeof(Osprey.Metadata.MetadataLog)) is Osprey.Metadata.MetadataLog m ? m.Image.Topic(name)!.TopicId : Guid.Empty);
        Assert.Matches("^[A-Za-z0-9_-]{22}$", id);
        var listed = await CliRunner.RunAsync(null, "topics", "list", "-b", b);
        var line = Assert.Single(listed.Stdout.Split('\n'), l => l.Contains(name, StringComparison.Ordinal));
        Assert.Equal([name, "3", "1", id], line.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("│", listed.Stdout, StringComparison.Ordinal);
        var described = await CliRunner.RunAsync(null, "topics", "describe", name, "-b", b);
        Assert.Contains($"id {id}", described.Stdout, StringComparison.Ordinal);
    }

    /// <summary><c>osprey apis</c> shows what the broker advertises (ApiVersions), the codec's range beside it.</summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ApisListWhatTheBrokerAdvertises()
    {
        await using var broker = await TestBroker.StartAsync();
        var apis = JsonDocument.Parse((await CliRunner.RunAsync(null, "apis", "-o", "json", "-b", broker.Bootstrap)).Stdout).RootElement.EnumerateArray().ToList();
        var produce = Assert.Single(apis, a => a.GetProperty("name").GetString() == "Produce");
        Assert.Equal(("3-13", "3-13"), (produce.GetProperty("brokerVersions").GetString(), produce.GetProperty("codecVersions").GetString()));

        // Codec-only APIs the broker refuses (SaslHandshake until security lands) are not listed as the broker's.
        Assert.DoesNotContain(apis, a => a.GetProperty("name").GetString() == "SaslHandshake");
        var codec = JsonDocument.Parse((await CliRunner.RunAsync(null, "apis", "--codec", "-o", "json")).Stdout).RootElement.EnumerateArray();
        Assert.Contains(codec, a => a.GetProperty("name").GetString() == "SaslHandshake");
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task VersionAndDashDashVersionAgree()
    {
        var command = await CliRunner.RunAsync(null, "version");
        var option = await CliRunner.RunAsync(null, "--version");
        Assert.Equal((0, 0), (command.ExitCode, option.ExitCode));
        Assert.Equal(option.Stdout.Trim(), command.Stdout.Trim());
        Assert.StartsWith("0.", command.Stdout, StringComparison.Ordinal);
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData("topics create dup", "dup", "TOPIC_ALREADY_EXISTS")]
    [InlineData("topics describe missing", "missing", "does not exist")]
    [InlineData("topics delete missing", "missing", "UNKNOWN_TOPIC_OR_PARTITION")]
    [InlineData("topics create bad -c retention.ms=soon", "retention.ms", "INVALID_CONFIG")]
    [InlineData("topics create bad/name", "bad/name", "INVALID_TOPIC_EXCEPTION")]
    [InlineData("configs alter --topic dup --set segment.bytes=1", "segment.bytes", "INVALID_CONFIG")]
    [InlineData("configs alter --topic dup --set no.such.config=1", "no.such.config", "INVALID_CONFIG")]
    [InlineData("consume dup --partition 7", "partition 7", "")]
    public async Task ErrorsNameWhatIsAtFault(string command, string named, string code)
    {
        await using var broker = await TestBroker.StartAsync();
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "dup", "-b", broker.Bootstrap)).ExitCode);
        var result = await CliRunner.RunAsync(null, [.. command.Split(' '), "-b", broker.Bootstrap]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(named, result.Stderr, StringComparison.Ordinal);
        Assert.Contains(code, result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal); // a message, not a stack trace
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnUnreachableBrokerIsOneReadableLine()
    {
        var result = await CliRunner.RunAsync(null, "topics", "list", "-b", "127.0.0.1:1");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("osprey: Cannot reach 127.0.0.1:1", result.Stderr, StringComparison.Ordinal);
    }
}

public class ProduceConsumeCliTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task LinesGoInAsRecordsThatRealClientsAndTheCliReadBack()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "lines", "-p", "3", "-b", b)).ExitCode);
        var input = string.Join('\n', Enumerable.Range(0, 300).Select(i => $"key-{i % 10}|value-{i}")) + "\n";
        var produced = await CliRunner.RunAsync(input, "produce", "lines", "--key-separator", "|", "--header", "source=cli", "--compression", "zstd", "-b", b);
        Assert.Equal(0, produced.ExitCode);
        Assert.Contains("produced 300 record(s)", produced.Stderr, StringComparison.Ordinal);

        // Confluent.Kafka reads what the CLI wrote: keys on Kafka's murmur2 partitions, order kept per partition.
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = b, GroupId = "unused" }).Build();
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("lines", p, Offset.Beginning)));
        var read = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (read.Count < 300 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r)
            {
                read.Add(r);
            }
        }

        Assert.Equal(300, read.Count);
        Assert.All(read, r => Assert.Equal(Osprey.Client.Partitioner.ForKey(Encoding.UTF8.GetBytes(r.Message.Key), 3), r.Partition.Value));
        Assert.All(read, r => Assert.Equal("cli", Encoding.UTF8.GetString(r.Message.Headers.GetLastBytes("source"))));
        Assert.All(read.GroupBy(r => r.Partition.Value), g => Assert.Equal(
            g.OrderBy(r => r.Offset.Value).Select(r => int.Parse(r.Message.Value["value-".Length..], CultureInfo.InvariantCulture)),
            g.Select(r => int.Parse(r.Message.Value["value-".Length..], CultureInfo.InvariantCulture)).Order()));

        var json = await CliRunner.RunAsync(null, "consume", "lines", "--from-beginning", "--max", "300", "--format", "json", "-b", b);
        Assert.Equal(0, json.ExitCode);
        var records = json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(
            Enumerable.Range(0, 300).Select(i => $"key-{i % 10}=value-{i}").Order(),
            records.Select(r => $"{r.GetProperty("key").GetString()}={r.GetProperty("value").GetString()}").Order());
        Assert.All(records, r => Assert.Equal("source", r.GetProperty("headers")[0].GetProperty("key").GetString()));
        Assert.All(records, r => Assert.Equal("CreateTime", r.GetProperty("timestampType").GetString()));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task StartingPointsPartitionsAndFormats()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = b }).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                await producer.ProduceAsync(new TopicPartition("points", 0), new Message<string, string> { Key = $"k{i}", Value = $"v{i}", Timestamp = new Timestamp(1_000_000 + (i * 1000), TimestampType.CreateTime) }, TestContext.Current.CancellationToken);
            }
        }

        var fromOffset = await CliRunner.RunAsync(null, "consume", "points", "--offset", "7", "--max", "3", "-b", b);
        Assert.Equal("v7\nv8\nv9\n", fromOffset.Stdout.Replace("\r", "", StringComparison.Ordinal));
        var fromTime = await CliRunner.RunAsync(null, "consume", "points", "--from-time", "1005000", "--max", "2", "--format", "key-value", "--key-separator", "=", "-b", b);
        Assert.Equal("k5=v5\nk6=v6\n", fromTime.Stdout.Replace("\r", "", StringComparison.Ordinal));
        var iso = await CliRunner.RunAsync(null, "consume", "points", "--from-time", "1970-01-01T00:16:48Z", "--max", "1", "-b", b);
        Assert.Equal("v8\n", iso.Stdout.Replace("\r", "", StringComparison.Ordinal));

        // Only new records by default: nothing arrives, so --timeout-ms ends it.
        var latest = await CliRunner.RunAsync(null, "consume", "points", "--timeout-ms", "300", "-b", b);
        Assert.Equal((0, ""), (latest.ExitCode, latest.Stdout));

        var toPartition = await CliRunner.RunAsync("x\ny\n", "produce", "points", "--partition", "0", "--acks", "1", "-b", b);
        Assert.Equal(0, toPartition.ExitCode);
        Assert.Equal(12, broker.Server.Logs.Get("points", 0)!.LogEndOffset);
    }
}

public class ConfigsAndClusterCliTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task BrokerConfigsAndTheCluster()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        var all = JsonDocument.Parse((await CliRunner.RunAsync(null, "configs", "describe", "--broker", "1", "--all", "-o", "json", "-b", b)).Stdout).RootElement;
        var retention = all.EnumerateArray().Single(e => e.GetProperty("name").GetString() == "log.retention.ms");
        Assert.Equal(("604800000", "default"), (retention.GetProperty("value").GetString(), retention.GetProperty("source").GetString()));

        Assert.Equal(0, (await CliRunner.RunAsync(null, "configs", "alter", "--broker-defaults", "--set", "log.retention.ms=5000", "-b", b)).ExitCode);
        var defaults = JsonDocument.Parse((await CliRunner.RunAsync(null, "configs", "describe", "--broker-defaults", "-o", "json", "-b", b)).Stdout).RootElement;
        Assert.Equal("5000", Assert.Single(defaults.EnumerateArray()).GetProperty("value").GetString());

        var refused = await CliRunner.RunAsync(null, "configs", "alter", "--broker", "1", "--set", "num.partitions=3", "-b", b);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("num.partitions", refused.Stderr, StringComparison.Ordinal);
        var ambiguous = await CliRunner.RunAsync(null, "configs", "describe", "--broker", "1", "--topic", "x", "-b", b);
        Assert.NotEqual(0, ambiguous.ExitCode);

        var cluster = JsonDocument.Parse((await CliRunner.RunAsync(null, "cluster", "describe", "-o", "json", "-b", b)).Stdout).RootElement;
        Assert.Equal((broker.Server.Identity.ClusterId, 1), (cluster.GetProperty("clusterId").GetString(), cluster.GetProperty("controllerId").GetInt32()));
        Assert.Equal(broker.Server.Port, Assert.Single(cluster.GetProperty("brokers").EnumerateArray()).GetProperty("port").GetInt32());
    }
}
