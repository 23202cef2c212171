using System.Text;
using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;
using Osprey.Broker.Transactions;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// Transaction version 2 (KIP-890 part 2) on the wire, as a Kafka 4 Java producer speaks it: no AddPartitionsToTxn
/// or AddOffsetsToTxn (Produce v12 and TxnOffsetCommit v5 add their partitions), EndTxn v5 answers with a bumped
/// epoch, and a late write or EndTxn of an ended transaction is refused instead of joining the next one (the
/// "torn transaction" Jepsen found). What is committed is then read by Confluent.Kafka read_committed.
/// </summary>
public class TransactionVersion2Tests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<TestBroker> StartAsync() => TestBroker.StartAsync(o => o with
    {
        Config = BrokerConfig.From(("offsets.topic.num.partitions", "2"), ("transaction.state.log.num.partitions", "2"), ("group.initial.rebalance.delay.ms", "0")),
    });

    /// <summary>A transaction version 2 producer speaking raw requests.</summary>
    private sealed class Producer(RawConnection connection, string transactionalId) : IDisposable
    {
        public long ProducerId { get; set; }

        public short Epoch { get; set; }

        private readonly Dictionary<string, int> _sequences = [];

        public async Task InitAsync()
        {
            var response = await CoordinatorCallAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = transactionalId, TransactionTimeoutMs = 60_000 }, 5, r => r.ErrorCode);
            Assert.Equal(0, response.ErrorCode);
            (ProducerId, Epoch) = (response.ProducerId, response.ProducerEpoch);
        }

        /// <summary>Produces one transactional record with the given identity (the current one unless a late request is simulated).</summary>
        public async Task<ErrorCode> ProduceAsync(string topic, string value, long? producerId = null, short? epoch = null)
        {
            var key = $"{producerId ?? ProducerId}/{epoch ?? Epoch}/{topic}";
            var sequence = _sequences.GetValueOrDefault(key);
            using var builder = new RecordBatchBuilder { ProducerId = producerId ?? ProducerId, ProducerEpoch = epoch ?? Epoch, BaseSequence = sequence, IsTransactional = true };
            builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, Encoding.UTF8.GetBytes(value));
            var response = await IdempotenceTests.CallAsync<ProduceResponse>(connection, new ProduceRequest
            {
                TransactionalId = transactionalId,
                Acks = -1,
                TimeoutMs = 5000,
                TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
            }, 12);
            var error = (ErrorCode)Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode;
            if (error == ErrorCode.None)
            {
                _sequences[key] = sequence + 1;
            }

            return error;
        }

        /// <summary>
        /// TxnOffsetCommit, retried as a client does while the group coordinator creates or loads __consumer_offsets
        /// (the first commit of a test is what creates it, and loading its partitions can outlast the answer).
        /// </summary>
        public async Task<ErrorCode> CommitOffsetAsync(string group, string topic, long offset)
        {
            while (true)
            {
                var response = await IdempotenceTests.CallAsync<TxnOffsetCommitResponse>(connection, new TxnOffsetCommitRequest
                {
                    TransactionalId = transactionalId,
                    GroupId = group,
                    ProducerId = ProducerId,
                    ProducerEpoch = Epoch,
                    Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = offset }] }],
                }, 5);
                var error = (ErrorCode)Assert.Single(Assert.Single(response.Topics).Partitions).ErrorCode;
                if (error is not (ErrorCode.CoordinatorLoadInProgress or ErrorCode.CoordinatorNotAvailable))
                {
                    return error;
                }

                await Task.Delay(50, Ct);
            }
        }

        /// <summary>EndTxn v5 with the given identity; adopts the answer's producer id and epoch when <paramref name="adopt"/>.</summary>
        public async Task<EndTxnResponse> EndAsync(bool commit, long? producerId = null, short? epoch = null, bool adopt = true)
        {
            var response = await CoordinatorCallAsync<EndTxnResponse>(
                new EndTxnRequest { TransactionalId = transactionalId, ProducerId = producerId ?? ProducerId, ProducerEpoch = epoch ?? Epoch, Committed = commit }, 5, r => r.ErrorCode);
            if (adopt && response.ErrorCode == 0)
            {
                (ProducerId, Epoch) = (response.ProducerId, response.ProducerEpoch);
            }

            return response;
        }

        /// <summary>A call to the transaction coordinator, retried as a client does while it creates or loads __transaction_state.</summary>
        private async Task<T> CoordinatorCallAsync<T>(Osprey.Protocol.IApiMessage request, short version, Func<T, short> error)
            where T : Osprey.Protocol.IApiMessage, new()
        {
            T response;
            while (error(response = await IdempotenceTests.CallAsync<T>(connection, request, version)) is (short)ErrorCode.CoordinatorLoadInProgress or (short)ErrorCode.CoordinatorNotAvailable)
            {
                await Task.Delay(50, Ct);
            }

            return response;
        }

        public async Task<DescribeTransactionsResponse.TransactionStateData> DescribeAsync() =>
            Assert.Single((await IdempotenceTests.CallAsync<DescribeTransactionsResponse>(connection, new DescribeTransactionsRequest { TransactionalIds = [transactionalId] }, 0)).TransactionStates);

        public void Dispose() => connection.Dispose();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task EveryEndBumpsTheEpochAndLateRequestsOfAnEndedTransactionAreRefused()
    {
        await using var broker = await StartAsync();
        await TransactionTests.CreateAsync(broker, "tv2-out", 1);
        await TransactionTests.CreateAsync(broker, "tv2-in", 1);
        using var producer = new Producer(await RawConnection.OpenAsync(broker.Server.Port), "tv2-copier");

        // The broker offers transaction version 2 as a finalized feature, which is what makes a client use it.
        using (var probe = await RawConnection.OpenAsync(broker.Server.Port))
        {
            var versions = await IdempotenceTests.CallAsync<ApiVersionsResponse>(probe, new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 3);
            var feature = Assert.Single(versions.FinalizedFeatures, f => f.Name == "transaction.version");
            Assert.Equal(2, feature.MaxVersionLevel);
            Assert.True(versions.FinalizedFeaturesEpoch >= 0);
        }

        await producer.InitAsync();
        var (pid, first) = (producer.ProducerId, producer.Epoch);

        // Transaction 1: no AddPartitionsToTxn, no AddOffsetsToTxn.
        Assert.Equal(ErrorCode.None, await producer.ProduceAsync("tv2-out", "one"));
        Assert.Equal(ErrorCode.None, await producer.CommitOffsetAsync("tv2-group", "tv2-in", 7));
        var open = await producer.DescribeAsync();
        Assert.Equal("Ongoing", open.TransactionState);
        Assert.Contains(open.Topics, t => t.Topic == "tv2-out" && t.Partitions.SequenceEqual([0]));
        Assert.Contains(open.Topics, t => t.Topic == "__consumer_offsets");

        var ended = await producer.EndAsync(commit: true);
        Assert.Equal((0, pid, (short)(first + 1)), (ended.ErrorCode, ended.ProducerId, ended.ProducerEpoch));

        // A retry of that EndTxn (the previous epoch) is answered as done, with the identity to go on with; the
        // opposite decision is refused.
        var retry = await producer.EndAsync(commit: true, epoch: first, adopt: false);
        Assert.Equal((0, pid, (short)(first + 1)), (retry.ErrorCode, retry.ProducerId, retry.ProducerEpoch));
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await producer.EndAsync(commit: false, epoch: first, adopt: false)).ErrorCode);

        // A late write of transaction 1 does not open a transaction.
        Assert.Equal(ErrorCode.InvalidProducerEpoch, await producer.ProduceAsync("tv2-out", "late write of one", epoch: first));
        Assert.Equal("CompleteCommit", (await producer.DescribeAsync()).TransactionState);

        // Transaction 2 is aborted; a late EndTxn(commit) of transaction 1 arriving while it is open cannot commit it.
        Assert.Equal(ErrorCode.None, await producer.ProduceAsync("tv2-out", "two (aborted)"));
        Assert.Equal((short)ErrorCode.ProducerFenced, (await producer.EndAsync(commit: true, epoch: first, adopt: false)).ErrorCode);
        Assert.Equal("Ongoing", (await producer.DescribeAsync()).TransactionState);
        var aborted = await producer.EndAsync(commit: false);
        Assert.Equal((0, (short)(first + 2)), (aborted.ErrorCode, aborted.ProducerEpoch));

        // An abort with nothing open still moves the epoch on; a commit with nothing open is refused.
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await producer.EndAsync(commit: true, adopt: false)).ErrorCode);
        Assert.Equal((0, (short)(first + 3)), ((await producer.EndAsync(commit: false)).ErrorCode, producer.Epoch));

        // Transaction 3 commits.
        Assert.Equal(ErrorCode.None, await producer.ProduceAsync("tv2-out", "three"));
        Assert.Equal(0, (await producer.EndAsync(commit: true)).ErrorCode);

        var log = broker.Server.Services.GetRequiredService<LogManager>().Get("tv2-out", 0)!;
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
        Assert.Equal(["one", "three"], TransactionTests.ReadAll(broker, "tv2-out", IsolationLevel.ReadCommitted, 2));
        Assert.Equal(["one", "two (aborted)", "three"], TransactionTests.ReadAll(broker, "tv2-out", IsolationLevel.ReadUncommitted, 3));

        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "tv2-group" }).Build();
        var committed = consumer.Committed([new TopicPartition("tv2-in", 0)], TimeSpan.FromSeconds(10));
        Assert.Equal(7, Assert.Single(committed).Offset.Value);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ATimedOutTransactionIsAbortedAndTheProducersAbortOfItIsAnsweredWithTheNewEpoch()
    {
        var time = new Storage.Tests.ManualTimeProvider();
        await using var broker = await TestBroker.StartAsync(o => o with
        {
            Time = time,
            Config = BrokerConfig.From(("transaction.state.log.num.partitions", "1"), ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000")),
        });
        await TransactionTests.CreateAsync(broker, "tv2-slow", 1);
        var transactions = broker.Server.Services.GetRequiredService<TransactionCoordinator>();
        using var producer = new Producer(await RawConnection.OpenAsync(broker.Server.Port), "tv2-sleepy");
        await producer.InitAsync();
        var (pid, epoch) = (producer.ProducerId, producer.Epoch);
        Assert.Equal(ErrorCode.None, await producer.ProduceAsync("tv2-slow", "too slow"));

        for (var i = 0; i < 62; i++)
        {
            time.Advance(1000);
        }

        await TestWait.UntilAsync(() => transactions.DescribeAsync("tv2-sleepy", CancellationToken.None).Result.Transaction!.State == TransactionState.CompleteAbort);

        // The producer is fenced for writes; its abort (with the epoch it knows) is answered as done.
        Assert.Equal(ErrorCode.InvalidProducerEpoch, await producer.ProduceAsync("tv2-slow", "after the timeout"));
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await producer.EndAsync(commit: true, adopt: false)).ErrorCode);
        var abort = await producer.EndAsync(commit: false);
        Assert.Equal((0, pid, (short)(epoch + 1)), (abort.ErrorCode, abort.ProducerId, abort.ProducerEpoch));

        // It goes on with the new epoch.
        Assert.Equal(ErrorCode.None, await producer.ProduceAsync("tv2-slow", "in time"));
        Assert.Equal(0, (await producer.EndAsync(commit: true)).ErrorCode);
        var log = broker.Server.Services.GetRequiredService<LogManager>().Get("tv2-slow", 0)!;
        Assert.Equal(log.LogEndOffset, log.LastStableOffset);
        Assert.Equal([(pid, 0L, 1L)], log.AbortedTransactions(0, log.LogEndOffset).Select(a => (a.ProducerId, a.FirstOffset, a.LastOffset)));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task WhenTheEpochRunsOutTheProducerMovesToANewIdAndARetryOfTheLastEndIsStillRecognised()
    {
        var settings = BrokerConfig.From(("transaction.state.log.num.partitions", "1"));
        var broker = await TestBroker.StartAsync(o => o with { Config = settings });
        await using var _ = broker;
        await TransactionTests.CreateAsync(broker, "tv2-worn", 1);
        long pid;
        long next;
        using (var producer = new Producer(await RawConnection.OpenAsync(broker.Server.Port), "tv2-worn"))
        {
            await producer.InitAsync();
            pid = producer.ProducerId;

            // Wear the epoch out: the coordinator's record is moved to the last epoch a transaction may end with.
            var (_, txn) = await broker.Server.Services.GetRequiredService<TransactionCoordinator>().DescribeAsync("tv2-worn", Ct);
            txn!.ProducerEpoch = short.MaxValue - 1;
            producer.Epoch = short.MaxValue - 1;

            Assert.Equal(ErrorCode.None, await producer.ProduceAsync("tv2-worn", "last"));
            var ended = await producer.EndAsync(commit: true);
            Assert.Equal(0, ended.ErrorCode);
            Assert.NotEqual(pid, ended.ProducerId);
            Assert.Equal(0, ended.ProducerEpoch);
            next = ended.ProducerId;

            // The COMMIT marker is written under the old id with the last epoch.
            var log = broker.Server.Services.GetRequiredService<LogManager>().Get("tv2-worn", 0)!;
            Assert.Equal(log.LogEndOffset, log.LastStableOffset);
            Assert.Equal(short.MaxValue, Assert.Single(log.ActiveProducers(), p => p.ProducerId == pid).Epoch);
        }

        // After a restart a retry of that EndTxn, under the old id, is still answered as done.
        await broker.Server.DisposeAsync();
        await using var again = await TestBroker.StartAsync(o => o with { DataDirectory = broker.Server.Options.DataDirectory, Config = settings });
        using var restarted = new Producer(await RawConnection.OpenAsync(again.Server.Port), "tv2-worn");
        var retry = await restarted.EndAsync(commit: true, producerId: pid, epoch: short.MaxValue - 1, adopt: false);
        Assert.Equal((0, next, (short)0), (retry.ErrorCode, retry.ProducerId, retry.ProducerEpoch));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, await restarted.ProduceAsync("tv2-worn", "old id", producerId: pid, epoch: short.MaxValue - 1));
        restarted.ProducerId = next;
        restarted.Epoch = 0;
        Assert.Equal(ErrorCode.None, await restarted.ProduceAsync("tv2-worn", "new id"));
        Assert.Equal(0, (await restarted.EndAsync(commit: true)).ErrorCode);
        Assert.Equal(["last", "new id"], TransactionTests.ReadAll(again, "tv2-worn", IsolationLevel.ReadCommitted, 2));
    }

    /// <summary>
    /// The Java producer keeps five requests in flight per connection and, with transaction version 2, starts every
    /// transaction at sequence 0 under the epoch EndTxn returned. Each transaction's first writes all have to add
    /// the partition (the coordinator's lock, a __transaction_state write), so they wait; the broker must still
    /// append them in the order they were sent, or a later batch lands first and the earlier ones are refused as
    /// out of sequence (kafka-producer-perf-test --transactional-id failed so on its first commit).
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PipelinedWritesOfEachTransactionAreAppendedInSendingOrder()
    {
        await using var broker = await StartAsync();
        await TransactionTests.CreateAsync(broker, "tv2-pipelined", 1);
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        using var producer = new Producer(connection, "tv2-perf");
        await producer.InitAsync();
        var expected = new List<string>();
        var correlation = 1000;
        for (var transaction = 0; transaction < 10; transaction++)
        {
            // Five produce requests sent back to back before any answer is read, sequences 0-4 under the new epoch.
            var sent = new List<int>();
            for (var sequence = 0; sequence < 5; sequence++)
            {
                var value = $"t{transaction}-s{sequence}";
                expected.Add(value);
                using var builder = new RecordBatchBuilder { ProducerId = producer.ProducerId, ProducerEpoch = producer.Epoch, BaseSequence = sequence, IsTransactional = true };
                builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, Encoding.UTF8.GetBytes(value));
                var request = new ProduceRequest
                {
                    TransactionalId = "tv2-perf",
                    Acks = -1,
                    TimeoutMs = 5000,
                    TopicData = [new() { Name = "tv2-pipelined", PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
                };
                await connection.SendAsync(request, 12, ++correlation);
                sent.Add(correlation);
            }

            var offsets = new List<long>();
            foreach (var id in sent)
            {
                var (received, response) = await connection.ReceiveAsync<ProduceResponse>(12);
                Assert.Equal(id, received);
                var partition = Assert.Single(Assert.Single(response.Responses).PartitionResponses);
                Assert.True(partition.ErrorCode == 0, $"transaction {transaction}: {(ErrorCode)partition.ErrorCode} {partition.ErrorMessage}");
                offsets.Add(partition.BaseOffset);
            }

            Assert.Equal(offsets.Order(), offsets);
            var ended = await producer.EndAsync(commit: true);
            Assert.Equal(0, ended.ErrorCode);
        }

        Assert.Equal(expected, TransactionTests.ReadAll(broker, "tv2-pipelined", IsolationLevel.ReadCommitted, expected.Count));
    }
}
