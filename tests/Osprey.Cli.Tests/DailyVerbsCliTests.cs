using System.Text.Json;
using Confluent.Kafka;
using Osprey.Broker.Config;
using Osprey.Broker.Tests;

namespace Osprey.Cli.Tests;

/// <summary>The verbs Kafka users reach for daily, in the osprey CLI, checked against what Confluent.Kafka wrote or reads.</summary>
public class DailyVerbsCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static List<JsonElement> JsonLines(CliRunner.Result result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        return [.. result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)];
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TombstonesSeveralTopicsPatternsAndBinarySafeOutput()
    {
        await using var broker = await TestBroker.StartAsync();
        var b = broker.Bootstrap;
        foreach (var topic in new[] { "metrics-a", "metrics-b", "other" })
        {
            Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", topic, "-b", b)).ExitCode);
            Assert.Equal(0, (await CliRunner.RunAsync($"k1:{topic}-1\nk2:NULL\n", "produce", topic, "--key-separator", ":", "--null-value-marker", "NULL", "-b", b)).ExitCode);
        }

        // A value equal to the marker went out as null (a tombstone), as Confluent.Kafka sees it too.
        using (var consumer = new ConsumerBuilder<string, string?>(new ConsumerConfig { BootstrapServers = b, GroupId = "check" }).Build())
        {
            consumer.Assign(new TopicPartitionOffset("other", 0, 1));
            var tombstone = consumer.Consume(TimeSpan.FromSeconds(30));
            Assert.Equal(("k2", null), (tombstone?.Message.Key, tombstone?.Message.Value));
        }

        var both = JsonLines(await CliRunner.RunAsync(null, "consume", "--include", "metrics-.*", "--from-beginning", "--max", "4", "--format", "json", "-b", b));
        Assert.Equal(["metrics-a", "metrics-a", "metrics-b", "metrics-b"], both.Select(r => r.GetProperty("topic").GetString()).Order());
        Assert.Equal(2, both.Count(r => r.GetProperty("value").ValueKind == JsonValueKind.Null));

        var named = await CliRunner.RunAsync(null, "consume", "metrics-a", "other", "--from-beginning", "--max", "4", "--format", "key-value", "--key-separator", "=", "-b", b);
        Assert.Equal(["k1=metrics-a-1", "k1=other-1", "k2=null", "k2=null"], named.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

        var hex = JsonLines(await CliRunner.RunAsync(null, "consume", "other", "--from-beginning", "--max", "1", "--format", "json", "--encoding", "hex", "-b", b));
        Assert.Equal(("6b31", Convert.ToHexStringLower("other-1"u8)), (hex[0].GetProperty("key").GetString(), hex[0].GetProperty("value").GetString()));
        var base64 = JsonLines(await CliRunner.RunAsync(null, "consume", "other", "--from-beginning", "--max", "1", "--format", "json", "--encoding", "base64", "-b", b));
        Assert.Equal(Convert.ToBase64String("other-1"u8), base64[0].GetProperty("value").GetString());
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ReadCommittedShowsOnlyCommittedTransactions()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("transaction.state.log.num.partitions", "2")) });
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "ledger", "-b", b)).ExitCode);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = b, TransactionalId = "ledger-writer" }).Build())
        {
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            foreach (var (value, commit) in new[] { ("kept-1", true), ("dropped", false), ("kept-2", true) })
            {
                producer.BeginTransaction();
                await producer.ProduceAsync("ledger", new Message<Null, string> { Value = value }, Ct);
                if (commit)
                {
                    producer.CommitTransaction();
                }
                else
                {
                    producer.AbortTransaction();
                }
            }
        }

        var committed = await CliRunner.RunAsync(null, "consume", "ledger", "--from-beginning", "--isolation-level", "read_committed", "--timeout-ms", "3000", "-b", b);
        Assert.Equal(["kept-1", "kept-2"], committed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var everything = await CliRunner.RunAsync(null, "consume", "ledger", "--from-beginning", "--max", "3", "-b", b);
        Assert.Equal(["kept-1", "dropped", "kept-2"], everything.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DeleteRecordsDeleteOffsetsAndACommandConfigFile()
    {
        await using var broker = await StartGroupBrokerAsync();
        var b = broker.Bootstrap;
        var config = Path.GetTempFileName();
        try
        {
            // The bootstrap server comes from the Kafka client properties file.
            await File.WriteAllTextAsync(config, $"bootstrap.servers={b}\nclient.id=ops\nsecurity.protocol=PLAINTEXT\n", Ct);
            Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "trimmed", "-p", "2", "--command-config", config)).ExitCode);
            Assert.Equal(0, (await CliRunner.RunAsync(string.Concat(Enumerable.Range(0, 10).Select(i => $"v{i}\n")), "produce", "trimmed", "-p", "0", "--command-config", config)).ExitCode);

            var deleted = await CliRunner.RunAsync(null, "topics", "delete-records", "trimmed", "--before", "6", "--partition", "0", "--command-config", config);
            Assert.True(deleted.ExitCode == 0, deleted.Stderr);
            Assert.Contains("trimmed-0: low watermark 6", deleted.Stdout, StringComparison.Ordinal);
            Assert.Equal(6, broker.Server.Logs.Get("trimmed", 0)!.LogStartOffset);
            var left = await CliRunner.RunAsync(null, "consume", "trimmed", "-p", "0", "--from-beginning", "--max", "4", "--command-config", config);
            Assert.Equal(["v6", "v7", "v8", "v9"], left.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));

            Assert.Equal(0, (await CliRunner.RunAsync(null, "consume", "trimmed", "--group", "trimmers", "--from-beginning", "--max", "4", "--command-config", config)).ExitCode);
            var removed = await CliRunner.RunAsync(null, "groups", "delete-offsets", "trimmers", "--topic", "trimmed", "--command-config", config);
            Assert.True(removed.ExitCode == 0, removed.Stderr);
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = b }).Build();
            var offsets = Assert.Single(await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("trimmers", null)]));
            Assert.DoesNotContain(offsets.Partitions, p => p.Offset != Offset.Unset);

            // Security the client cannot honour yet is refused, not ignored.
            await File.WriteAllTextAsync(config, $"bootstrap.servers={b}\nsecurity.protocol=SASL_SSL\n", Ct);
            var refused = await CliRunner.RunAsync(null, "topics", "list", "--command-config", config);
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("security.protocol", refused.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(config);
        }
    }

    private static Task<TestBroker> StartGroupBrokerAsync() =>
        TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.num.partitions", "3")) });
}
