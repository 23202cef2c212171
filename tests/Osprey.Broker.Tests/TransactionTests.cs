using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;

namespace Osprey.Broker.Tests;

/// <summary>Confluent.Kafka transactional producers and read_committed consumers against the broker.</summary>
public class TransactionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<TestBroker> StartAsync(params (string Name, string Value)[] settings) =>
        TestBroker.StartAsync(o => o with
        {
            Config = BrokerConfig.From([
                ("group.initial.rebalance.delay.ms", "0"),
                ("offsets.topic.num.partitions", "3"),
                ("transaction.state.log.num.partitions", "3"),
                .. settings]),
        });

    internal static async Task CreateAsync(TestBroker broker, string topic, int partitions)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions }]);
    }

    /// <summary>A copier's consumer: read_committed, offsets committed only through its transactions.</summary>
    internal static IConsumer<string, string> CopierConsumer(string bootstrap, string group) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 500,
        }).Build();

    /// <summary>Up to <paramref name="max"/> records, as many as come without a 200 ms pause.</summary>
    internal static List<ConsumeResult<string, string>> NextBatch(IConsumer<string, string> consumer, int max)
    {
        var batch = new List<ConsumeResult<string, string>>();
        while (batch.Count < max && consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r)
        {
            batch.Add(r);
        }

        return batch;
    }

    private static IProducer<string, string> Transactional(TestBroker broker, string id, int timeoutMs = 60_000) =>
        new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap, TransactionalId = id, TransactionTimeoutMs = timeoutMs }).Build();

    /// <summary>
    /// Everything a consumer with the isolation level reads from the topic's start to its end: the high watermark, or
    /// for read_committed the last stable offset, as the broker reports it (partition EOF on every assigned
    /// partition, with nothing after it). No quiet window: a record that should not be there would come before the
    /// end, so the negative checks do not depend on how long anyone waited.
    /// </summary>
    internal static List<string> ReadAll(TestBroker broker, string topic, IsolationLevel isolation, int expected)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = $"reader-{Guid.NewGuid():N}",
            IsolationLevel = isolation,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        consumer.Subscribe(topic);
        var values = new List<string>();
        var atEnd = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(60); // only keeps a broken broker from hanging the test
        while (DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is not { } r)
            {
                continue;
            }

            if (!r.IsPartitionEOF)
            {
                values.Add(r.Message.Value);
                atEnd.Remove(r.Partition.Value);
                continue;
            }

            atEnd.Add(r.Partition.Value);
            if (values.Count >= expected && consumer.Assignment.Count > 0 && consumer.Assignment.All(tp => atEnd.Contains(tp.Partition.Value)))
            {
                break;
            }
        }

        consumer.Close();
        return values;
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CommittedTransactionsAreVisibleAndAbortedOnesOnlyToReadUncommitted()
    {
        await using var broker = await StartAsync();
        await CreateAsync(broker, "payments", 2);
        using var producer = Transactional(broker, "payments-tx");
        producer.InitTransactions(TimeSpan.FromSeconds(30));

        producer.BeginTransaction();
        for (var i = 0; i < 4; i++)
        {
            await producer.ProduceAsync(new TopicPartition("payments", i % 2), new Message<string, string> { Key = "k", Value = $"committed-{i}" }, Ct);
        }

        producer.CommitTransaction(TimeSpan.FromSeconds(30));

        producer.BeginTransaction();
        for (var i = 0; i < 3; i++)
        {
            await producer.ProduceAsync(new TopicPartition("payments", i % 2), new Message<string, string> { Key = "k", Value = $"aborted-{i}" }, Ct);
        }

        producer.AbortTransaction(TimeSpan.FromSeconds(30));

        producer.BeginTransaction();
        await producer.ProduceAsync(new TopicPartition("payments", 0), new Message<string, string> { Key = "k", Value = "committed-last" }, Ct);
        producer.CommitTransaction(TimeSpan.FromSeconds(30));

        var committed = ReadAll(broker, "payments", IsolationLevel.ReadCommitted, 5);
        Assert.Equal(Enumerable.Range(0, 4).Select(i => $"committed-{i}").Append("committed-last").Order(), committed.Order());
        var uncommitted = ReadAll(broker, "payments", IsolationLevel.ReadUncommitted, 8);
        Assert.Equal(8, uncommitted.Count);
        Assert.Equal(3, uncommitted.Count(v => v.StartsWith("aborted-", StringComparison.Ordinal)));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnOpenTransactionHoldsReadCommittedConsumersBackUntilItCommits()
    {
        await using var broker = await StartAsync();
        await CreateAsync(broker, "held", 1);
        using var producer = Transactional(broker, "held-tx");
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        await producer.ProduceAsync("held", new Message<string, string> { Key = "k", Value = "pending" }, Ct);

        Assert.Empty(ReadAll(broker, "held", IsolationLevel.ReadCommitted, 0));
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            var listed = await admin.ListOffsetsAsync([new TopicPartitionOffsetSpec { TopicPartition = new TopicPartition("held", 0), OffsetSpec = OffsetSpec.Latest() }], new ListOffsetsOptions { IsolationLevel = IsolationLevel.ReadCommitted });
            Assert.Equal(0, Assert.Single(listed.ResultInfos).TopicPartitionOffsetError.Offset.Value);
        }

        producer.CommitTransaction(TimeSpan.FromSeconds(30));
        Assert.Equal(["pending"], ReadAll(broker, "held", IsolationLevel.ReadCommitted, 1));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ANewProducerWithTheSameTransactionalIdFencesTheOldOne()
    {
        await using var broker = await StartAsync();
        await CreateAsync(broker, "fenced", 1);
        using var zombie = Transactional(broker, "shared-id");
        zombie.InitTransactions(TimeSpan.FromSeconds(30));
        zombie.BeginTransaction();
        await zombie.ProduceAsync("fenced", new Message<string, string> { Key = "k", Value = "zombie" }, Ct);

        using var successor = Transactional(broker, "shared-id");
        successor.InitTransactions(TimeSpan.FromSeconds(30)); // aborts the zombie's open transaction
        successor.BeginTransaction();
        await successor.ProduceAsync("fenced", new Message<string, string> { Key = "k", Value = "successor" }, Ct);
        successor.CommitTransaction(TimeSpan.FromSeconds(30));

        var e = Assert.ThrowsAny<KafkaException>(() => zombie.CommitTransaction(TimeSpan.FromSeconds(30)));
        Assert.True(e.Error.IsFatal || e.Error.Code is ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch, e.Error.ToString());
        Assert.Equal(["successor"], ReadAll(broker, "fenced", IsolationLevel.ReadCommitted, 1));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ATransactionOpenPastItsTimeoutIsAbortedAndItsProducerFenced()
    {
        await using var broker = await StartAsync(("transaction.abort.timed.out.transaction.cleanup.interval.ms", "100"));
        await CreateAsync(broker, "stalled", 1);
        using var stalled = Transactional(broker, "stalled-tx", timeoutMs: 1_000);
        stalled.InitTransactions(TimeSpan.FromSeconds(30));
        stalled.BeginTransaction();
        await stalled.ProduceAsync("stalled", new Message<string, string> { Key = "k", Value = "never committed" }, Ct);

        // The coordinator aborts the transaction once it is open past its timeout: the last stable offset moves
        // past it without the producer doing anything.
        var log = broker.Server.Services.GetRequiredService<Osprey.Storage.LogManager>().Get("stalled", 0)!;
        await TestWait.UntilAsync(() => log.LastStableOffset == log.LogEndOffset && log.LogEndOffset == 2);
        Assert.Single(log.AbortedTransactions(0, log.LogEndOffset));

        // The producer learns it was fenced when it tries to commit; nothing of it is ever read committed.
        var e = Assert.ThrowsAny<KafkaException>(() => stalled.CommitTransaction(TimeSpan.FromSeconds(30)));
        Assert.True(e.Error.IsFatal || e.Error.Code is ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch or ErrorCode.InvalidTxnState, e.Error.ToString());
        using var next = Transactional(broker, "stalled-tx");
        next.InitTransactions(TimeSpan.FromSeconds(30));
        next.BeginTransaction();
        await next.ProduceAsync("stalled", new Message<string, string> { Key = "k", Value = "in time" }, Ct);
        next.CommitTransaction(TimeSpan.FromSeconds(30));
        Assert.Equal(["in time"], ReadAll(broker, "stalled", IsolationLevel.ReadCommitted, 1));
        Assert.Equal(["never committed", "in time"], ReadAll(broker, "stalled", IsolationLevel.ReadUncommitted, 2));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ATransactionOpenAcrossABrokerRestartCommitsAndItsMarkersSurviveTheNextOne()
    {
        var settings = BrokerConfig.From(("offsets.topic.num.partitions", "3"), ("transaction.state.log.num.partitions", "3"), ("group.initial.rebalance.delay.ms", "0"));
        var first = await TestBroker.StartAsync(o => o with { Config = settings });
        await using var _ = first;
        var endpoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, first.Server.Port);
        var data = first.Server.Options.DataDirectory;
        await CreateAsync(first, "restarted", 2);
        using var producer = Transactional(first, "restart-tx");
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        for (var i = 0; i < 4; i++)
        {
            await producer.ProduceAsync(new TopicPartition("restarted", i % 2), new Message<string, string> { Key = "k", Value = $"before-{i}" }, Ct);
        }

        // The broker stops with the transaction open and comes back on the same address; the producer goes on.
        await first.Server.DisposeAsync();
        var second = await TestBroker.StartAsync(o => o with { Listener = endpoint, DataDirectory = data, Config = settings });
        for (var i = 0; i < 2; i++)
        {
            await producer.ProduceAsync(new TopicPartition("restarted", i % 2), new Message<string, string> { Key = "k", Value = $"after-{i}" }, Ct);
        }

        producer.CommitTransaction(TimeSpan.FromSeconds(30));
        string[] all = ["after-0", "after-1", "before-0", "before-1", "before-2", "before-3"];
        Assert.Equal(all, ReadAll(second, "restarted", IsolationLevel.ReadCommitted, 6).Order());

        // The COMMIT markers were written to disk: after another restart the records are still read committed.
        await second.Server.DisposeAsync();
        await using var third = await TestBroker.StartAsync(o => o with { Listener = endpoint, DataDirectory = data, Config = settings });
        Assert.Equal(all, ReadAll(third, "restarted", IsolationLevel.ReadCommitted, 6).Order());
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task OffsetsSentToTheTransactionAreCommittedWithIt()
    {
        await using var broker = await StartAsync();
        await CreateAsync(broker, "input", 1);
        await CreateAsync(broker, "output", 1);
        using (var plain = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            for (var i = 0; i < 6; i++)
            {
                await plain.ProduceAsync("input", new Message<string, string> { Key = "k", Value = $"in-{i}" }, Ct);
            }
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "copier",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
        }).Build();
        consumer.Subscribe("input");
        using var producer = Transactional(broker, "copier-tx");
        producer.InitTransactions(TimeSpan.FromSeconds(30));

        // Copy the first four in one transaction with their offsets; abort a transaction copying the rest.
        var read = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (read.Count < 6 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } r)
            {
                read.Add(r);
            }
        }

        Assert.Equal(6, read.Count);
        producer.BeginTransaction();
        foreach (var r in read.Take(4))
        {
            await producer.ProduceAsync("output", new Message<string, string> { Key = r.Message.Key, Value = r.Message.Value.Replace("in", "out", StringComparison.Ordinal) }, Ct);
        }

        producer.SendOffsetsToTransaction([new TopicPartitionOffset("input", 0, read[3].Offset + 1)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
        producer.CommitTransaction(TimeSpan.FromSeconds(30));

        producer.BeginTransaction();
        foreach (var r in read.Skip(4))
        {
            await producer.ProduceAsync("output", new Message<string, string> { Key = r.Message.Key, Value = "never" }, Ct);
        }

        producer.SendOffsetsToTransaction([new TopicPartitionOffset("input", 0, 6)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
        producer.AbortTransaction(TimeSpan.FromSeconds(30));

        var committed = consumer.Committed([new TopicPartition("input", 0)], TimeSpan.FromSeconds(10));
        Assert.Equal(4, Assert.Single(committed).Offset.Value);
        Assert.Equal(Enumerable.Range(0, 4).Select(i => $"out-{i}"), ReadAll(broker, "output", IsolationLevel.ReadCommitted, 4));
        consumer.Close();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ACopierThatCrashesAtRandomPointsStillCopiesEveryRecordExactlyOnce()
    {
        await using var broker = await StartAsync();
        await CreateAsync(broker, "ledger-in", 2);
        await CreateAsync(broker, "ledger-out", 2);
        const int total = 300;
        using (var plain = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            for (var i = 0; i < total; i++)
            {
                plain.Produce(new TopicPartition("ledger-in", i % 2), new Message<string, string> { Key = "k", Value = $"{i}" });
            }

            plain.Flush(Ct);
        }

        // Each incarnation copies in transactions of a few records and "crashes" (drops its clients without
        // closing, as a killed process would) at a random point: before producing, in the middle of a transaction,
        // or after sending its offsets but before committing. The last one runs to the end.
        var random = new Random(848);
        for (var incarnation = 0; incarnation < 5; incarnation++)
        {
            var last = incarnation == 4;
            var crashAfter = last ? int.MaxValue : random.Next(1, 6);
            var crashPoint = random.Next(3);
            var consumer = CopierConsumer(broker.Bootstrap, "ledger-copier");
            var producer = Transactional(broker, "ledger-copier-tx");
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            consumer.Subscribe("ledger-in");
            var transactions = 0;
            var idleSince = DateTime.UtcNow;
            while (transactions < crashAfter && DateTime.UtcNow - idleSince < TimeSpan.FromSeconds(last ? 10 : 30))
            {
                var batch = NextBatch(consumer, 7);

                if (batch.Count == 0)
                {
                    continue;
                }

                idleSince = DateTime.UtcNow;
                var crashing = transactions + 1 == crashAfter;
                producer.BeginTransaction();
                if (crashing && crashPoint == 0)
                {
                    break;
                }

                foreach (var r in batch)
                {
                    producer.Produce(new TopicPartition("ledger-out", r.Partition.Value), new Message<string, string> { Key = r.Message.Key, Value = "copy-" + r.Message.Value });
                    if (crashing && crashPoint == 1 && r == batch[batch.Count / 2])
                    {
                        break;
                    }
                }

                if (crashing && crashPoint == 1)
                {
                    producer.Flush(Ct);
                    break;
                }

                producer.SendOffsetsToTransaction(consumer.Assignment.Select(tp => new TopicPartitionOffset(tp, consumer.Position(tp))), consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
                if (crashing)
                {
                    break;
                }

                producer.CommitTransaction(TimeSpan.FromSeconds(30));
                transactions++;
            }

            if (last)
            {
                consumer.Close();
            }

            consumer.Dispose();
            producer.Dispose();
        }

        var copied = ReadAll(broker, "ledger-out", IsolationLevel.ReadCommitted, total);
        Assert.Equal(Enumerable.Range(0, total).Select(i => $"copy-{i}").Order(), copied.Order());
    }
}
