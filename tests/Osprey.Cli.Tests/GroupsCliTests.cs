using System.Text.Json;
using Confluent.Kafka;
using Osprey.Broker.Config;
using Osprey.Broker.Tests;

namespace Osprey.Cli.Tests;

public class GroupsCliTests
{
    private static Task<TestBroker> StartAsync() =>
        TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.num.partitions", "5")) });

    private static async Task ProduceAsync(TestBroker broker, string topic, int from, int count)
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build();
        for (var i = from; i < from + count; i++)
        {
            await producer.ProduceAsync(new TopicPartition(topic, i % 2), new Message<Null, string> { Value = $"v{i}" }, TestContext.Current.CancellationToken);
        }
    }

    private static JsonElement Json(CliRunner.Result result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        return JsonDocument.Parse(result.Stdout).RootElement;
    }

    /// <summary>
    /// SIGTERM (what Ctrl+C, systemd and docker stop send) makes a group consumer stop reading, commit what it
    /// printed and leave the group before it exits with 0: it used to die at once, leaving a ghost member that held
    /// its partitions for the session timeout (and made groups reset-offsets refuse the group).
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ASignalledGroupConsumerCommitsWhatItPrintedAndLeaves()
    {
        await using var broker = await StartAsync();
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "stopped", "-p", "2", "-b", b)).ExitCode);
        await ProduceAsync(broker, "stopped", 0, 12);
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "osprey.dll"), "consume", "stopped", "--group", "interrupted", "--from-beginning", "-b", b])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var printed = new List<string>();
        while (printed.Count < 12 && await process.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
        {
            printed.Add(line);
        }

        Assert.Equal(12, printed.Count);
        Assert.Equal(0, Kill(process.Id, 15));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(deadline.Token);
        Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken));

        var described = Json(await CliRunner.RunAsync(null, "groups", "describe", "interrupted", "-o", "json", "-b", b));
        Assert.Equal(("Empty", 0L), (described.GetProperty("state").GetString(), described.GetProperty("totalLag").GetInt64()));
        Assert.Equal(12L, described.GetProperty("partitions").EnumerateArray().Sum(p => p.GetProperty("committedOffset").GetInt64()));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ConsumeAsAGroupCommitsAndDescribeShowsTheLag()
    {
        await using var broker = await StartAsync();
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "jobs", "-p", "2", "-b", b)).ExitCode);
        await ProduceAsync(broker, "jobs", 0, 20);

        var first = await CliRunner.RunAsync(null, "consume", "jobs", "--group", "workers", "--from-beginning", "--max", "20", "-b", b);
        Assert.Equal(0, first.ExitCode);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"v{i}").Order(), first.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

        var described = Json(await CliRunner.RunAsync(null, "groups", "describe", "workers", "-o", "json", "-b", b));
        Assert.Equal(("Empty", 0L), (described.GetProperty("state").GetString(), described.GetProperty("totalLag").GetInt64()));
        Assert.Equal([10L, 10L], described.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("committedOffset").GetInt64()));

        await ProduceAsync(broker, "jobs", 20, 5);
        described = Json(await CliRunner.RunAsync(null, "groups", "describe", "workers", "-o", "json", "-b", b));
        Assert.Equal(5, described.GetProperty("totalLag").GetInt64());
        Assert.All(described.GetProperty("partitions").EnumerateArray(), p => Assert.True(p.GetProperty("lagMs").GetInt64() >= 0));
        var table = await CliRunner.RunAsync(null, "groups", "describe", "workers", "-b", b);
        Assert.Contains("total", table.Stdout, StringComparison.Ordinal);

        // The next member of the group starts where the last one committed: only the five new records.
        var second = await CliRunner.RunAsync(null, "consume", "jobs", "--group", "workers", "--max", "5", "-b", b);
        Assert.Equal(Enumerable.Range(20, 5).Select(i => $"v{i}").Order(), second.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

        // Confluent.Kafka in the same group agrees: nothing left to read until something new arrives.
        await ProduceAsync(broker, "jobs", 25, 1);
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig { BootstrapServers = b, GroupId = "workers", AutoOffsetReset = AutoOffsetReset.Earliest }).Build();
        consumer.Subscribe("jobs");
        var next = consumer.Consume(TimeSpan.FromSeconds(30));
        Assert.Equal("v25", next?.Message.Value);
        consumer.Close();

        var list = Json(await CliRunner.RunAsync(null, "groups", "list", "-o", "json", "-b", b));
        Assert.Contains(list.EnumerateArray(), g => g.GetProperty("group").GetString() == "workers" && g.GetProperty("state").GetString() == "Empty");
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AConsumerProtocolGroupIsListedAndDescribedWithItsMemberAndLag()
    {
        await using var broker = await StartAsync();
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "modern", "-p", "2", "-b", b)).ExitCode);
        await ProduceAsync(broker, "modern", 0, 6);
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig
        {
            BootstrapServers = b,
            GroupId = "kip848",
            GroupProtocol = GroupProtocol.Consumer,
            ClientId = "modern-client",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe("modern");
        var read = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (read < 6 && DateTime.UtcNow < deadline)
        {
            read += consumer.Consume(TimeSpan.FromMilliseconds(100)) is null ? 0 : 1;
        }

        Assert.Equal(6, read);
        consumer.Commit([new TopicPartitionOffset("modern", 0, 1), new TopicPartitionOffset("modern", 1, 3)]);

        var described = Json(await CliRunner.RunAsync(null, "groups", "describe", "kip848", "-o", "json", "-b", b));
        Assert.Equal(("consumer", "Stable", "uniform"), (described.GetProperty("type").GetString(), described.GetProperty("state").GetString(), described.GetProperty("protocol").GetString()));
        var member = Assert.Single(described.GetProperty("members").EnumerateArray());
        Assert.Equal("modern-client", member.GetProperty("clientId").GetString());
        Assert.Equal([0, 1], member.GetProperty("assignment").EnumerateArray().Select(a => a.GetProperty("partition").GetInt32()).Order());
        Assert.Equal(6 - 1 - 3, described.GetProperty("totalLag").GetInt64());

        var list = Json(await CliRunner.RunAsync(null, "groups", "list", "-o", "json", "-b", b));
        Assert.Contains(list.EnumerateArray(), g => g.GetProperty("group").GetString() == "kip848" && g.GetProperty("type").GetString() == "consumer");
        consumer.Close();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ResetOffsetsIsADryRunUntilExecuteAndRefusedWhileMembersAreActive()
    {
        await using var broker = await StartAsync();
        var b = broker.Bootstrap;
        Assert.Equal(0, (await CliRunner.RunAsync(null, "topics", "create", "replay", "-p", "2", "-b", b)).ExitCode);
        await ProduceAsync(broker, "replay", 0, 10);
        Assert.Equal(0, (await CliRunner.RunAsync(null, "consume", "replay", "--group", "again", "--from-beginning", "--max", "10", "-b", b)).ExitCode);

        var dry = Json(await CliRunner.RunAsync(null, "groups", "reset-offsets", "again", "--topic", "replay", "--shift-by", "-2", "-o", "json", "-b", b));
        Assert.False(dry.GetProperty("executed").GetBoolean());
        Assert.Equal([(5L, 3L), (5L, 3L)], dry.GetProperty("partitions").EnumerateArray().Select(p => (p.GetProperty("current").GetInt64(), p.GetProperty("new").GetInt64())));
        var unchanged = Json(await CliRunner.RunAsync(null, "groups", "describe", "again", "-o", "json", "-b", b));
        Assert.Equal(0, unchanged.GetProperty("totalLag").GetInt64());

        Assert.Equal(0, (await CliRunner.RunAsync(null, "groups", "reset-offsets", "again", "--topic", "replay", "--to-earliest", "--execute", "-b", b)).ExitCode);
        var replayed = await CliRunner.RunAsync(null, "consume", "replay", "--group", "again", "--max", "10", "-b", b);
        Assert.Equal(10, replayed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        // With a member in the group the reset is refused and names the group.
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig { BootstrapServers = b, GroupId = "again" }).Build();
        consumer.Subscribe("replay");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (consumer.Assignment.Count == 0 && DateTime.UtcNow < deadline)
        {
            consumer.Consume(TimeSpan.FromMilliseconds(100));
        }

        var refused = await CliRunner.RunAsync(null, "groups", "reset-offsets", "again", "--topic", "replay", "--to-latest", "--execute", "-b", b);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("'again' has active members", refused.Stderr, StringComparison.Ordinal);
        var notEmpty = await CliRunner.RunAsync(null, "groups", "delete", "again", "-b", b);
        Assert.Contains("NON_EMPTY_GROUP", notEmpty.Stderr, StringComparison.Ordinal);
        consumer.Close();

        Assert.Equal(0, (await CliRunner.RunAsync(null, "groups", "delete", "again", "-b", b)).ExitCode);
        var gone = await CliRunner.RunAsync(null, "groups", "describe", "again", "-b", b);
        Assert.Equal(1, gone.ExitCode);
        Assert.Contains("GROUP_ID_NOT_FOUND", gone.Stderr, StringComparison.Ordinal);
    }
}
