using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;
using Osprey.Broker.Topics;
using Osprey.Broker.Transactions;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;
using Osprey.Storage.Tests;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// The transaction coordinator's state machine driven directly on a manual clock: begin, commit and abort with
/// their markers and last stable offsets, fencing of old epochs, late and repeated EndTxn, a timed-out
/// transaction aborted under a new epoch, and a broker restart in the middle of a transaction.
/// </summary>
public class TransactionCoordinatorTests
{
    private const int CheckIntervalMs = 1000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(TestBroker Broker, TransactionCoordinator Transactions, LogManager Logs)> StartAsync(ManualTimeProvider time, string? dataDirectory = null)
    {
        var broker = await TestBroker.StartAsync(o => o with
        {
            Time = time,
            DataDirectory = dataDirectory ?? o.DataDirectory,
            Config = BrokerConfig.From(
                ("transaction.state.log.num.partitions", "2"),
                ("offsets.topic.num.partitions", "2"),
                ("transaction.abort.timed.out.transaction.cleanup.interval.ms", CheckIntervalMs.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("transactional.id.expiration.ms", "600000")),
        });
        var transactions = broker.Server.Services.GetRequiredService<TransactionCoordinator>();
        Assert.Equal(ErrorCode.None, await transactions.EnsureStartedAsync(Ct));
        await TestWait.UntilAsync(() => transactions.AllLoaded);
        return (broker, transactions, broker.Server.Services.GetRequiredService<LogManager>());
    }

    internal static async Task CreateTopicAsync(TestBroker broker, string name)
    {
        var result = new CreateTopicsResponse.CreatableTopicResult { Name = name };
        await broker.Server.Services.GetRequiredService<TopicCreator>().CreateAsync(new CreateTopicsRequest.CreatableTopic { Name = name, NumPartitions = 1, ReplicationFactor = 1 }, result, validateOnly: false, Ct);
        Assert.Equal(0, result.ErrorCode);
    }

    private static async Task WriteAsync(LogManager logs, string topic, long producerId, short epoch, int sequence)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence, IsTransactional = true };
        builder.Append(1_700_000_000_000, null, [1, 2, 3]);
        await logs.AppendAsync(logs.Get(topic, 0)!, builder.ToArray(), durable: true);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task CommitAndAbortWriteMarkersAndRepeatedOrLateDecisionsAreHandled()
    {
        var time = new ManualTimeProvider();
        var (broker, transactions, logs) = await StartAsync(time);
        await using var _ = broker;
        await CreateTopicAsync(broker, "ledger");
        var (error, pid, epoch) = await transactions.InitProducerIdAsync("payer", 60_000, -1, -1, Ct);
        Assert.Equal((ErrorCode.None, (short)0), (error, epoch));

        Assert.Equal(ErrorCode.InvalidTxnState, await transactions.VerifyTransactionalWriteAsync(null, pid, epoch, logs.Get("ledger", 0)!, false, Ct)); // not in a transaction yet
        var added = await transactions.AddPartitionsAsync("payer", pid, epoch, [("ledger", 0)], TxnAddMode.Explicit, Ct);
        Assert.Equal(ErrorCode.None, added[("ledger", 0)]);
        Assert.Equal(ErrorCode.None, await transactions.VerifyTransactionalWriteAsync(null, pid, epoch, logs.Get("ledger", 0)!, false, Ct));
        await WriteAsync(logs, "ledger", pid, epoch, 0);
        var log = logs.Get("ledger", 0)!;
        Assert.Equal((1L, 0L), (log.LogEndOffset, log.LastStableOffset));

        Assert.Equal(ErrorCode.None, (await transactions.EndTxnAsync("payer", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error);
        Assert.Equal((2L, 2L), (log.LogEndOffset, log.LastStableOffset)); // the COMMIT marker, and nothing open
        Assert.Equal(ErrorCode.None, (await transactions.EndTxnAsync("payer", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error); // a retry
        Assert.Equal(ErrorCode.InvalidTxnState, (await transactions.EndTxnAsync("payer", pid, epoch, commit: false, transactionVersion: 0, Ct)).Error); // a late opposite decision
        Assert.Equal(2, log.LogEndOffset); // and neither wrote anything

        await transactions.AddPartitionsAsync("payer", pid, epoch, [("ledger", 0)], TxnAddMode.Explicit, Ct);
        await WriteAsync(logs, "ledger", pid, epoch, 1);
        Assert.Equal(ErrorCode.None, (await transactions.EndTxnAsync("payer", pid, epoch, commit: false, transactionVersion: 0, Ct)).Error);
        Assert.Equal([(pid, 2L, 3L)], log.AbortedTransactions(0, log.LogEndOffset).Select(a => (a.ProducerId, a.FirstOffset, a.LastOffset)));
        var (_, described) = await transactions.DescribeAsync("payer", Ct);
        Assert.Equal((TransactionState.CompleteAbort, 0), (described!.State, described.Partitions.Count));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ANewIncarnationFencesTheOldEpochAndAbortsItsTransaction()
    {
        var time = new ManualTimeProvider();
        var (broker, transactions, logs) = await StartAsync(time);
        await using var _ = broker;
        await CreateTopicAsync(broker, "orders");
        var (_, pid, epoch) = await transactions.InitProducerIdAsync("worker", 60_000, -1, -1, Ct);
        await transactions.AddPartitionsAsync("worker", pid, epoch, [("orders", 0)], TxnAddMode.Explicit, Ct);
        await WriteAsync(logs, "orders", pid, epoch, 0);

        var (error, samePid, newEpoch) = await transactions.InitProducerIdAsync("worker", 60_000, -1, -1, Ct);
        Assert.Equal((ErrorCode.None, pid), (error, samePid));
        Assert.True(newEpoch > epoch);
        var log = logs.Get("orders", 0)!;
        Assert.Equal(log.LogEndOffset, log.LastStableOffset); // the zombie's transaction was aborted
        Assert.Single(log.AbortedTransactions(0, log.LogEndOffset));

        // Everything the old epoch tries next is refused.
        Assert.Equal(ErrorCode.ProducerFenced, (await transactions.EndTxnAsync("worker", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error);
        Assert.Equal(ErrorCode.ProducerFenced, (await transactions.AddPartitionsAsync("worker", pid, epoch, [("orders", 0)], TxnAddMode.Explicit, Ct))[("orders", 0)]);
        Assert.Equal(ErrorCode.InvalidProducerEpoch, await transactions.VerifyTransactionalWriteAsync(null, pid, epoch, logs.Get("orders", 0)!, false, Ct));
        var stale = await Assert.ThrowsAsync<Osprey.Protocol.KafkaProtocolException>(() => WriteAsync(logs, "orders", pid, epoch, 1));
        Assert.Equal(ErrorCode.InvalidProducerEpoch, stale.ErrorCode); // the partition knows the new epoch from the marker
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ATransactionOpenPastItsTimeoutIsAbortedUnderANewEpoch()
    {
        var time = new ManualTimeProvider();
        var (broker, transactions, logs) = await StartAsync(time);
        await using var _ = broker;
        await CreateTopicAsync(broker, "slow");
        var (_, pid, epoch) = await transactions.InitProducerIdAsync("sleepy", 5_000, -1, -1, Ct);
        Assert.Equal(ErrorCode.InvalidTransactionTimeout, (await transactions.InitProducerIdAsync("greedy", 3_600_000, -1, -1, Ct)).Error);
        await transactions.AddPartitionsAsync("sleepy", pid, epoch, [("slow", 0)], TxnAddMode.Explicit, Ct);
        await WriteAsync(logs, "slow", pid, epoch, 0);

        time.Advance(4_000); // within the timeout: still open
        var (_, open) = await transactions.DescribeAsync("sleepy", Ct);
        Assert.Equal(TransactionState.Ongoing, open!.State);
        for (var i = 0; i < 3; i++)
        {
            time.Advance(CheckIntervalMs);
        }

        await TestWait.UntilAsync(() => transactions.DescribeAsync("sleepy", CancellationToken.None).Result.Transaction!.State == TransactionState.CompleteAbort);
        var (_, aborted) = await transactions.DescribeAsync("sleepy", Ct);
        Assert.Equal(epoch + 1, aborted!.ProducerEpoch);
        var log = logs.Get("slow", 0)!;
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
        Assert.Equal(ErrorCode.ProducerFenced, (await transactions.EndTxnAsync("sleepy", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnOpenTransactionSurvivesABrokerRestartAndCommitsAfterIt()
    {
        var time = new ManualTimeProvider();
        var (broker, transactions, logs) = await StartAsync(time);
        await using var _ = broker;
        await CreateTopicAsync(broker, "durable");
        var (_, pid, epoch) = await transactions.InitProducerIdAsync("survivor", 60_000, -1, -1, Ct);
        await transactions.AddPartitionsAsync("survivor", pid, epoch, [("durable", 0)], TxnAddMode.Explicit, Ct);
        await WriteAsync(logs, "durable", pid, epoch, 0);
        await broker.Server.DisposeAsync();

        var (again, reloaded, reopenedLogs) = await StartAsync(time, broker.Server.Options.DataDirectory);
        await using var __ = again;
        var (_, txn) = await reloaded.DescribeAsync("survivor", Ct);
        Assert.Equal((TransactionState.Ongoing, pid, epoch), (txn!.State, txn.ProducerId, txn.ProducerEpoch));
        Assert.Contains(("durable", 0), txn.Partitions);
        var log = reopenedLogs.Get("durable", 0)!;
        Assert.Equal(0, log.LastStableOffset); // still held by the open transaction
        Assert.Equal(ErrorCode.None, (await reloaded.EndTxnAsync("survivor", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error);
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
    }

    /// <summary>
    /// The broker dies (its files as a kill leaves them: everything written, nothing closed) after the commit decision
    /// and the first partition's marker, before the second's. The restarted coordinator finishes the commit: the
    /// second partition gets its marker, the first a second one (harmless: no transaction of that producer is open
    /// there any more), both last stable offsets reach the end, and the id goes on.
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ACoordinatorKilledBetweenMarkersFinishesTheCommitAfterARestart()
    {
        var time = new ManualTimeProvider();
        var (broker, transactions, logs) = await StartAsync(time);
        await using var _ = broker;
        await CreateTopicAsync(broker, "left");
        await CreateTopicAsync(broker, "right");
        var (_, pid, epoch) = await transactions.InitProducerIdAsync("half-marked", 60_000, -1, -1, Ct);
        await transactions.AddPartitionsAsync("half-marked", pid, epoch, [("left", 0), ("right", 0)], TxnAddMode.Explicit, Ct);
        await WriteAsync(logs, "left", pid, epoch, 0);
        await WriteAsync(logs, "right", pid, epoch, 0);

        var crashed = Path.Combine(Path.GetTempPath(), "osprey-txn-kill-" + Guid.NewGuid().ToString("N"));
        transactions.BeforeMarkers = async txn =>
        {
            transactions.BeforeMarkers = null;
            Assert.Equal(ErrorCode.None, await transactions.WriteLocalMarkerAsync("left", 0, txn.ProducerId, txn.ProducerEpoch, commit: true, coordinatorEpoch: 0, Ct));
            CopyDirectory(broker.Server.Options.DataDirectory, crashed);
        };
        Assert.Equal(ErrorCode.None, (await transactions.EndTxnAsync("half-marked", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error);
        await broker.Server.DisposeAsync();

        // What the kill left: PrepareCommit decided, "left" marked, "right" not.
        var (again, reloaded, reopenedLogs) = await StartAsync(time, crashed);
        await using var __ = again;
        Assert.False(reopenedLogs.WasCleanShutdown);
        var (_, txn) = await reloaded.DescribeAsync("half-marked", Ct);
        Assert.Equal((TransactionState.CompleteCommit, pid, epoch), (txn!.State, txn.ProducerId, txn.ProducerEpoch));
        Assert.Empty(txn.Partitions);
        foreach (var topic in new[] { "left", "right" })
        {
            var log = reopenedLogs.Get(topic, 0)!;
            Assert.Equal(log.LogEndOffset, log.LastStableOffset);
            var batches = ReadBatches(log);
            Assert.Equal(1, batches.Count(b => !b.IsControlBatch));
            Assert.All(batches.Where(b => b.IsControlBatch), b => Assert.Equal(pid, b.ProducerId));
            Assert.Empty(log.AbortedTransactions(0, log.LastStableOffset));
        }

        Assert.Equal(1, ReadBatches(reopenedLogs.Get("right", 0)!).Count(b => b.IsControlBatch));

        // The producer's retry of its EndTxn is answered as done, and its next transaction works.
        Assert.Equal(ErrorCode.None, (await reloaded.EndTxnAsync("half-marked", pid, epoch, commit: true, transactionVersion: 0, Ct)).Error);
        await reloaded.AddPartitionsAsync("half-marked", pid, epoch, [("right", 0)], TxnAddMode.Explicit, Ct);
        await WriteAsync(reopenedLogs, "right", pid, epoch, 1);
        Assert.Equal(ErrorCode.None, (await reloaded.EndTxnAsync("half-marked", pid, epoch, commit: false, transactionVersion: 0, Ct)).Error);
        Assert.Single(reopenedLogs.Get("right", 0)!.AbortedTransactions(0, long.MaxValue));
    }

    private static List<RecordBatchHeader> ReadBatches(PartitionLog log)
    {
        var headers = new List<RecordBatchHeader>();
        foreach (var batch in RecordBatch.Enumerate(PartitionLog.ReadBytes(log.Read(0, int.MaxValue))))
        {
            headers.Add(batch.Header);
        }

        return headers;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            if (Path.GetFileName(file) != ".lock")
            {
                File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
            }
        }

        foreach (var directory in Directory.GetDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnIdleTransactionalIdExpiresAndStartsAfreshAfterwards()
    {
        var time = new ManualTimeProvider();
        var (broker, transactions, _) = await StartAsync(time);
        await using var _b = broker;
        var (_, pid, _) = await transactions.InitProducerIdAsync("idle", 60_000, -1, -1, Ct);
        await transactions.InitProducerIdAsync("busy", 60_000, -1, -1, Ct);
        time.Advance(300_000);
        await transactions.InitProducerIdAsync("busy", 60_000, -1, -1, Ct); // activity keeps it
        time.Advance(300_000);
        time.Advance(CheckIntervalMs);
        await TestWait.UntilAsync(() => transactions.DescribeAsync("idle", CancellationToken.None).Result.Error == ErrorCode.TransactionalIdNotFound);
        Assert.Equal(ErrorCode.None, (await transactions.DescribeAsync("busy", Ct)).Error);

        var (error, again, epoch) = await transactions.InitProducerIdAsync("idle", 60_000, -1, -1, Ct);
        Assert.Equal((ErrorCode.None, (short)0), (error, epoch));
        Assert.NotEqual(pid, again);
    }
}
