using System.Text.Json;
using Confluent.Kafka;
using Osprey.Broker.Config;
using Osprey.Broker.Tests;

namespace Osprey.Cli.Tests;

public class TransactionsCliTests
{
    private static JsonElement Json(CliRunner.Result result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        return JsonDocument.Parse(result.Stdout).RootElement;
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ListAndDescribeShowOpenAndCompletedTransactions()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("transaction.state.log.num.partitions", "3")) });
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "ledger", "-p", "2", "-b", b)).ExitCode);
        using var done = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = b, TransactionalId = "done-tx" }).Build();
        done.InitTransactions(TimeSpan.FromSeconds(30));
        done.BeginTransaction();
        await done.ProduceAsync("ledger", new Message<Null, string> { Value = "x" }, TestContext.Current.CancellationToken);
        done.CommitTransaction(TimeSpan.FromSeconds(30));
        using var open = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = b, TransactionalId = "open-tx", TransactionTimeoutMs = 60_000 }).Build();
        open.InitTransactions(TimeSpan.FromSeconds(30));
        open.BeginTransaction();
        await open.ProduceAsync(new TopicPartition("ledger", 1), new Message<Null, string> { Value = "y" }, TestContext.Current.CancellationToken);

        var list = Json(await CliRunner.RunAsync(null, "transactions", "list", "-o", "json", "-b", b));
        var states = list.EnumerateArray().ToDictionary(t => t.GetProperty("transactionalId").GetString()!, t => (t.GetProperty("state").GetString(), t.GetProperty("hanging").GetBoolean()));
        Assert.Equal(("CompleteCommit", false), states["done-tx"]);
        Assert.Equal(("Ongoing", false), states["open-tx"]);

        var described = Json(await CliRunner.RunAsync(null, "transactions", "describe", "open-tx", "-o", "json", "-b", b));
        Assert.Equal(("Ongoing", 60_000), (described.GetProperty("state").GetString(), described.GetProperty("timeoutMs").GetInt32()));
        var partition = Assert.Single(described.GetProperty("partitions").EnumerateArray());
        Assert.Equal(("ledger", 1), (partition.GetProperty("topic").GetString(), partition.GetProperty("partition").GetInt32()));
        Assert.NotNull(described.GetProperty("startTime").GetString());

        var missing = await CliRunner.RunAsync(null, "transactions", "describe", "nobody", "-b", b);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("no such transactional id", missing.Stderr, StringComparison.Ordinal);
        open.AbortTransaction(TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData("Ongoing", 1_000, 500, 1_400, false)]
    [InlineData("Ongoing", 1_000, 500, 1_501, true)]
    [InlineData("CompleteCommit", 1_000, 500, 9_000, false)]
    [InlineData("Ongoing", -1, 500, 9_000, false)]
    public void ATransactionHangsWhenItIsOpenLongerThanItsTimeout(string state, long start, int timeout, long now, bool hanging) =>
        Assert.Equal(hanging, new Osprey.Client.TransactionInfo("t", state, 1, 0, timeout, start, []).IsHanging(now));
}
