using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Records;
using Osprey.Storage;
using Osprey.Storage.Tests;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// A deterministic simulation of the transaction coordinator's state machine on a manual clock. Producers of two
/// transactional ids, each incarnation speaking transaction version 1 or 2, write to three partitions, commit,
/// abort, are fenced by new incarnations and by their timeouts, and have their EndTxn and writes replayed late or
/// duplicated; the broker crashes between a recorded decision and its markers and restarts. A model of what each
/// producer was told decides, for every record written, whether it must end up committed or aborted, and checks the
/// partitions' last stable offsets after every step. Every state of Kafka's machine (Empty, Ongoing,
/// PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence) must be passed through.
/// </summary>
public class TransactionStateMachineTests
{
    private const int TimeoutMs = 10_000;
    private static readonly string[] Topics = ["sim-0", "sim-1", "sim-2"];
    private static readonly string[] Ids = ["alpha", "beta"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class SimulatedCrash : Exception
    {
        public SimulatedCrash()
            : base("simulated crash between the decision and its markers")
        {
        }
    }

    /// <summary>One transaction of one incarnation, as its producer knows it.</summary>
    private sealed class Txn
    {
        public long StartMs { get; set; } = -1;

        public HashSet<string> Partitions { get; } = [];

        public List<(string Topic, long Offset)> Writes { get; } = [];
    }

    /// <summary>A producer incarnation: its identity and transaction version, and the transaction it has open.</summary>
    private sealed class Producer(string id, long producerId, short epoch, short version)
    {
        public string Id { get; } = id;

        public long ProducerId { get; set; } = producerId;

        public short Epoch { get; set; } = epoch;

        public short Version { get; } = version;

        public Txn Current { get; set; } = new();

        // How the coordinator last left its transactions (Empty after InitProducerId).
        public TransactionState LastEnded { get; set; } = TransactionState.Empty;

        // Fenced by a timeout: a version 2 producer recovers by aborting, a version 1 producer is replaced.
        public bool TimedOut { get; set; }

        public Dictionary<(long, short, string), int> Sequences { get; } = [];
    }

    private sealed class World(ManualTimeProvider time, string dataDirectory, HashSet<TransactionState> visited) : IAsyncDisposable
    {
        private readonly List<TestBroker> _brokers = [];

        public TransactionCoordinator Transactions { get; private set; } = null!;

        public LogManager Logs { get; private set; } = null!;

        public ManualTimeProvider Time => time;

        public int Restarts { get; private set; }

        public async Task StartAsync()
        {
            var broker = await TestBroker.StartAsync(o => o with
            {
                Time = time,
                DataDirectory = dataDirectory,
                Config = BrokerConfig.From(
                    ("transaction.state.log.num.partitions", "2"),
                    ("offsets.topic.num.partitions", "1"),
                    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", int.MaxValue.ToString(CultureInfo.InvariantCulture)), // the simulation runs the check itself
                    ("transactional.id.expiration.ms", int.MaxValue.ToString(CultureInfo.InvariantCulture))),
            });
            _brokers.Add(broker);
            Transactions = broker.Server.Services.GetRequiredService<TransactionCoordinator>();
            Logs = broker.Server.Services.GetRequiredService<LogManager>();
            Assert.Equal(ErrorCode.None, await Transactions.EnsureStartedAsync(Ct));
            await TestWait.UntilAsync(() => Transactions.AllLoaded);
            Transactions.Transitioned = (_, _, to) => visited.Add(to);
            if (_brokers.Count == 1)
            {
                foreach (var topic in Topics)
                {
                    await TransactionCoordinatorTests.CreateTopicAsync(broker, topic);
                }
            }
        }

        // Stops the broker where it is (its coordinator's memory is lost) and starts it again from the disk.
        public async Task RestartAsync()
        {
            await _brokers[^1].Server.DisposeAsync();
            Restarts++;
            await StartAsync();
        }

        public async ValueTask DisposeAsync()
        {
            for (var i = _brokers.Count - 1; i >= 0; i--)
            {
                await _brokers[i].DisposeAsync();
            }
        }
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RandomInterleavingsKeepEveryTransactionWholeAndEveryLateRequestOut(int seed)
    {
        var random = new Random(seed);
        var visited = new HashSet<TransactionState>();
        await using var world = new World(new ManualTimeProvider(), Path.Combine(Path.GetTempPath(), $"osprey-txn-sim-{Guid.NewGuid():N}"), visited);
        await world.StartAsync();

        var expected = new Dictionary<(string Topic, long Offset), (long ProducerId, bool Committed)>();
        var producers = new Dictionary<string, Producer>();
        var zombies = new List<Producer>();
        var sentEnds = new List<(Producer Producer, long ProducerId, short Epoch, bool Commit)>();
        var sentWrites = new List<(long ProducerId, short Epoch, string Topic, int Sequence)>();
        var crashes = 0;

        void Decide(Producer producer, bool committed)
        {
            foreach (var (topic, offset) in producer.Current.Writes)
            {
                expected[(topic, offset)] = (producer.ProducerId, committed);
            }

            producer.LastEnded = committed ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
            producer.Current = new Txn();
        }

        async Task InitAsync(string id)
        {
            var version = random.Next(2) == 0 ? (short)0 : TransactionCoordinator.TransactionVersion2;
            var (error, pid, epoch) = await world.Transactions.InitProducerIdAsync(id, TimeoutMs, -1, -1, Ct);
            Assert.Equal(ErrorCode.None, error);
            if (producers.TryGetValue(id, out var old))
            {
                Assert.True(pid != old.ProducerId || epoch > old.Epoch, "a new incarnation must fence the old one");
                if (old.Current.Partitions.Count > 0)
                {
                    Decide(old, committed: false); // its open transaction was aborted
                }

                zombies.Add(old);
            }

            producers[id] = new Producer(id, pid, epoch, version);
        }

        async Task<ErrorCode> WriteAsync(long producerId, short epoch, string topic, int sequence, bool implicitAdd)
        {
            var verified = await world.Transactions.VerifyTransactionalWriteAsync(null, producerId, epoch, world.Logs.Get(topic, 0)!, implicitAdd, Ct);
            if (verified != ErrorCode.None)
            {
                return verified;
            }

            using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence, IsTransactional = true };
            builder.Append(world.Time.NowMs, null, [(byte)sequence]);
            try
            {
                await world.Logs.AppendAsync(world.Logs.Get(topic, 0)!, builder.ToArray(), durable: true);
                return ErrorCode.None;
            }
            catch (KafkaProtocolException e)
            {
                return e.ErrorCode;
            }
        }

        async Task ProduceAsync(Producer producer)
        {
            var topic = Topics[random.Next(Topics.Length)];
            if (producer.Version < TransactionCoordinator.TransactionVersion2 && !producer.Current.Partitions.Contains(topic))
            {
                var added = await world.Transactions.AddPartitionsAsync(producer.Id, producer.ProducerId, producer.Epoch, [(topic, 0)], TxnAddMode.Explicit, Ct);
                Assert.Equal(ErrorCode.None, added[(topic, 0)]);
            }

            var key = (producer.ProducerId, producer.Epoch, topic);
            var sequence = producer.Sequences.GetValueOrDefault(key);
            var log = world.Logs.Get(topic, 0)!;
            var offset = log.LogEndOffset;
            Assert.Equal(ErrorCode.None, await WriteAsync(producer.ProducerId, producer.Epoch, topic, sequence, producer.Version >= TransactionCoordinator.TransactionVersion2));
            producer.Sequences[key] = sequence + 1;
            sentWrites.Add((producer.ProducerId, producer.Epoch, topic, sequence));
            if (producer.Current.Partitions.Count == 0)
            {
                producer.Current.StartMs = world.Time.NowMs;
            }

            producer.Current.Partitions.Add(topic);
            producer.Current.Writes.Add((topic, offset));
        }

        // EndTxn by the producer with the answer the model predicts.
        async Task EndAsync(Producer producer, bool commit, bool crash)
        {
            var v2 = producer.Version >= TransactionCoordinator.TransactionVersion2;
            var open = producer.Current.Partitions.Count > 0;
            var expectedError = open ? ErrorCode.None
                : v2 ? (commit ? ErrorCode.InvalidTxnState : ErrorCode.None)
                : commit ? (producer.LastEnded == TransactionState.CompleteCommit ? ErrorCode.None : ErrorCode.InvalidTxnState)
                : (producer.LastEnded is TransactionState.Empty or TransactionState.CompleteAbort ? ErrorCode.None : ErrorCode.InvalidTxnState);
            sentEnds.Add((producer, producer.ProducerId, producer.Epoch, commit));
            EndTxnResult result;
            if (crash)
            {
                world.Transactions.BeforeMarkers = _ =>
                {
                    world.Transactions.BeforeMarkers = null;
                    throw new SimulatedCrash();
                };
                try
                {
                    result = await world.Transactions.EndTxnAsync(producer.Id, producer.ProducerId, producer.Epoch, commit, producer.Version, Ct);
                    world.Transactions.BeforeMarkers = null; // nothing to mark: no crash
                }
                catch (SimulatedCrash)
                {
                    crashes++;
                    await world.RestartAsync();
                    Assert.Equal(commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort, (await SnapshotAsync(producer.Id)).Item1); // carried out at load

                    // The decision was on disk: the restarted coordinator carried it out, and the producer's retry
                    // of its EndTxn is answered as done.
                    result = await world.Transactions.EndTxnAsync(producer.Id, producer.ProducerId, producer.Epoch, commit, producer.Version, Ct);
                }
            }
            else
            {
                result = await world.Transactions.EndTxnAsync(producer.Id, producer.ProducerId, producer.Epoch, commit, producer.Version, Ct);
            }

            Assert.Equal(expectedError, result.Error);
            if (result.Error != ErrorCode.None)
            {
                return;
            }

            if (v2)
            {
                Assert.True(result.ProducerId != producer.ProducerId || result.ProducerEpoch == producer.Epoch + 1, "version 2 bumps the epoch at every end");
                (producer.ProducerId, producer.Epoch) = (result.ProducerId, result.ProducerEpoch);
            }
            else
            {
                Assert.Equal((producer.ProducerId, producer.Epoch), (result.ProducerId, result.ProducerEpoch));
            }

            if (open || v2)
            {
                Decide(producer, commit);
            }
        }

        async Task<(TransactionState, long, short, int)> SnapshotAsync(string id)
        {
            var (_, txn) = await world.Transactions.DescribeAsync(id, Ct);
            return (txn!.State, txn.ProducerId, txn.ProducerEpoch, txn.Partitions.Count);
        }

        // A late copy of an EndTxn sent earlier by an identity that is no longer the current one: it changes nothing.
        async Task ReplayEndAsync()
        {
            var candidates = sentEnds.Where(e => producers[e.Producer.Id] is var current && (current.ProducerId, current.Epoch) != (e.ProducerId, e.Epoch)).ToList();
            if (candidates.Count == 0)
            {
                return;
            }

            var (producer, pid, epoch, commit) = candidates[random.Next(candidates.Count)];
            var before = await SnapshotAsync(producer.Id);
            var result = await world.Transactions.EndTxnAsync(producer.Id, pid, epoch, commit, producer.Version, Ct);
            Assert.Equal(before, await SnapshotAsync(producer.Id));
            if (result.Error == ErrorCode.None)
            {
                Assert.Equal(commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort, before.Item1); // only ever the retry of what is done
            }
        }

        // A late or duplicated copy of a write sent earlier: nothing new is written.
        async Task ReplayWriteAsync()
        {
            if (sentWrites.Count == 0)
            {
                return;
            }

            var (pid, epoch, topic, sequence) = sentWrites[random.Next(sentWrites.Count)];
            var log = world.Logs.Get(topic, 0)!;
            var end = log.LogEndOffset;
            var owner = producers.Values.Concat(zombies).First(p => p.Sequences.ContainsKey((pid, epoch, topic)));
            await WriteAsync(pid, epoch, topic, sequence, owner.Version >= TransactionCoordinator.TransactionVersion2);
            Assert.Equal(end, log.LogEndOffset);
        }

        async Task TimeOutAsync()
        {
            world.Time.Advance(random.Next(0, TimeoutMs * 3 / 2));
            var now = world.Time.NowMs;
            await world.Transactions.AbortTimedOutAsync();
            foreach (var producer in producers.Values.Where(p => p.Current.Partitions.Count > 0 && now - p.Current.StartMs > TimeoutMs))
            {
                Decide(producer, committed: false);
                producer.TimedOut = true;
            }
        }

        void CheckStableOffsets()
        {
            foreach (var topic in Topics)
            {
                var log = world.Logs.Get(topic, 0)!;
                var open = producers.Values.Concat(zombies).SelectMany(p => p.Current.Writes).Where(w => w.Topic == topic).Select(w => w.Offset).ToList();
                Assert.Equal(open.Count > 0 ? open.Min() : log.LogEndOffset, log.LastStableOffset);
            }
        }

        void CheckOutcomes()
        {
            foreach (var topic in Topics)
            {
                var log = world.Logs.Get(topic, 0)!;
                var aborted = log.AbortedTransactions(0, log.LogEndOffset);
                foreach (var ((_, offset), (pid, committed)) in expected.Where(e => e.Key.Topic == topic))
                {
                    var isAborted = aborted.Any(a => a.ProducerId == pid && a.FirstOffset <= offset && offset <= a.LastOffset);
                    Assert.True(committed == (!isAborted && offset < log.LastStableOffset), $"{topic} offset {offset} of producer {pid} should be {(committed ? "committed" : "aborted")}");
                }
            }
        }

        foreach (var id in Ids)
        {
            await InitAsync(id);
        }

        for (var step = 0; step < 400; step++)
        {
            var producer = producers[Ids[random.Next(Ids.Length)]];
            if (producer.TimedOut)
            {
                producer.TimedOut = false;
                if (producer.Version >= TransactionCoordinator.TransactionVersion2)
                {
                    // A version 2 producer aborts with the epoch it knows and goes on with the new one.
                    var recovered = await world.Transactions.EndTxnAsync(producer.Id, producer.ProducerId, producer.Epoch, commit: false, producer.Version, Ct);
                    Assert.Equal(ErrorCode.None, recovered.Error);
                    (producer.ProducerId, producer.Epoch) = (recovered.ProducerId, recovered.ProducerEpoch);
                }
                else
                {
                    await InitAsync(producer.Id);
                }

                continue;
            }

            var roll = random.Next(100);
            switch (roll)
            {
                case < 6:
                    await InitAsync(producer.Id);
                    break;
                case < 45:
                    await ProduceAsync(producer);
                    break;
                case < 58:
                    await EndAsync(producer, commit: true, crash: crashes < 6 && random.Next(8) == 0);
                    break;
                case < 68:
                    await EndAsync(producer, commit: false, crash: crashes < 6 && random.Next(8) == 0);
                    break;
                case < 74 when sentEnds.Count > 0 && sentEnds[^1].Producer == producer && producer.Current.Partitions.Count == 0:
                    // A duplicate of the producer's last EndTxn, at once: answered as done, nothing changes.
                    var (_, pid, epoch, commit) = sentEnds[^1];
                    var before = await SnapshotAsync(producer.Id);
                    var duplicate = await world.Transactions.EndTxnAsync(producer.Id, pid, epoch, commit, producer.Version, Ct);
                    Assert.Equal(before, await SnapshotAsync(producer.Id));
                    Assert.True(duplicate.Error is ErrorCode.None or ErrorCode.InvalidTxnState or ErrorCode.ProducerFenced);
                    break;
                case < 82:
                    await ReplayEndAsync();
                    break;
                case < 92:
                    await ReplayWriteAsync();
                    break;
                default:
                    await TimeOutAsync();
                    break;
            }

            CheckStableOffsets();
        }

        // Whatever is still open times out; then every record's fate is checked, before and after a restart.
        world.Time.Advance(TimeoutMs + 1);
        await TimeOutAsync();
        CheckStableOffsets();
        CheckOutcomes();
        await world.RestartAsync();
        CheckStableOffsets();
        CheckOutcomes();

        Assert.True(expected.Values.Count(e => e.Committed) > 20 && expected.Values.Count(e => !e.Committed) > 20, "the simulation should commit and abort plenty");
        Assert.True(crashes >= 2, $"the simulation should crash between a decision and its markers ({crashes} crashes)");
        Assert.Equal(
            [TransactionState.Empty, TransactionState.Ongoing, TransactionState.PrepareCommit, TransactionState.PrepareAbort, TransactionState.CompleteCommit, TransactionState.CompleteAbort, TransactionState.PrepareEpochFence],
            visited.Where(s => s != TransactionState.Dead).Order());
    }
}
