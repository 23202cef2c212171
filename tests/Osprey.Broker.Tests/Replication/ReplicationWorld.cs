using System.Collections.Immutable;
using Osprey.Broker.Replication;
using Osprey.Storage;

namespace Osprey.Broker.Tests.Replication;

/// <summary>
/// A seeded simulation of one partition replicated on three brokers under a controller, driving the real sans-I/O
/// replication code (<see cref="LeaderState"/>, <see cref="EpochLineage"/>) through produce with acks=all, follower
/// fetches, ISR changes, broker crashes and restarts, fencing and clean elections, stale metadata and cut links. Logs
/// are lists of (epoch, value), on disk up to their last fsync: a crash loses the rest, as a power loss would. acks=all
/// waits for the leader's fsync and the in-sync replicas; a follower fsyncs before it fetches again. After each event
/// the invariants are checked; a failure names the seed and the events that led to it.
/// </summary>
internal sealed class ReplicationWorld
{
    public const int MinInsyncReplicas = 2;
    public const long LagTimeMaxMs = 10_000;
    public const long SessionTimeoutMs = 9_000;
    public const long RequestTimeoutMs = 30_000;
    private const int ControllerNode = 0;

    private static readonly ImmutableArray<int> ReplicaIds = [1, 2, 3];

    private readonly Random _random;
    private readonly int _seed;
    private readonly Dictionary<int, SimBroker> _brokers = [];
    private readonly HashSet<(int, int)> _cutLinks = [];
    private readonly List<PendingAck> _pending = [];
    private readonly List<(long Offset, int Value)> _acked = [];
    private readonly Dictionary<(int Broker, int Epoch, long Incarnation), long> _highWatermarks = [];
    private readonly Queue<string> _trace = new();
    private readonly int[] _weights;
    private readonly int _lossPercent;
    private readonly Dictionary<int, long> _lastHeartbeatSent = new() { [1] = 0, [2] = 0, [3] = 0 };
    private readonly Dictionary<int, long> _lastIsrCheck = new() { [1] = 0, [2] = 0, [3] = 0 };
    private long _now;
    private int _nextValue;
    private long _nextBrokerEpoch = 100;

    // The controller's truth.
    private int _leader = 1;
    private int _leaderEpoch;
    private int _partitionEpoch;
    private ImmutableArray<int> _isr = ReplicaIds;
    private readonly Dictionary<int, (bool Fenced, long BrokerEpoch, long LastHeartbeatMs)> _registrations = [];

    public ReplicationWorld(int seed)
    {
        _seed = seed;
        _random = new Random(seed);

        // Each seed weighs the kinds of event its own way (swarm testing): some runs crash brokers often, some cut
        // links, some lose many answers, some rarely spread metadata, which opens the windows rarer faults need.
        int[] typical = [30, 35, 3, 7, 12, 2, 3, 3, 10];
        _weights = [.. typical.Select((w, i) => i <= 1 ? w : _random.Next(4) == 0 ? 0 : _random.Next(1, w * 3))];
        _lossPercent = _random.Next(0, 40);
        foreach (var id in ReplicaIds)
        {
            var broker = new SimBroker(id) { BrokerEpoch = _nextBrokerEpoch++ };
            _brokers[id] = broker;
            _registrations[id] = (false, broker.BrokerEpoch, 0);
            LearnMetadata(broker);
        }
    }

    public int AckedCount => _acked.Count;


    public long Elections => _leaderEpoch;

    /// <summary>Runs <paramref name="events"/> random events, then heals everything and checks that all replicas converge.</summary>
    public void Run(int events)
    {
        for (var i = 0; i < events; i++)
        {
            _now += _random.Next(0, 1500);
            Step();
            CheckInvariants();
        }

        Heal();
    }

    private void Step()
    {
        // Brokers heartbeat every two seconds, when they are up and reach the controller (one in ten is lost).
        foreach (var id in ReplicaIds)
        {
            if (_now - _lastHeartbeatSent[id] >= 2_000)
            {
                _lastHeartbeatSent[id] = _now;
                if (_random.Next(10) > 0)
                {
                    Heartbeat(id);
                }
            }

            // The leader's ISR check runs every second (Kafka's runs every half lag time).
            if (_now - _lastIsrCheck[id] >= 1_000)
            {
                _lastIsrCheck[id] = _now;
                CheckIsr(id);
            }
        }

        var roll = _random.Next(_weights.Sum());
        var kind = 0;
        while (roll >= _weights[kind])
        {
            roll -= _weights[kind++];
        }

        switch (kind)
        {
            case 0: Produce(); break;
            case 1: Fetch(Pick(ReplicaIds)); break;
            case 2: CheckIsr(Pick(ReplicaIds)); break;
            case 3: ControllerTick(); break;
            case 4: LearnMetadata(_brokers[Pick(ReplicaIds)]); break;
            case 5: Crash(Pick(ReplicaIds)); break;
            case 6: Restart(Pick(ReplicaIds)); break;
            case 7: ToggleLink(); break;
            default: Flush(Pick(ReplicaIds)); break;
        }
    }

    private bool Lost() => _random.Next(100) < _lossPercent;

    private int Pick(ImmutableArray<int> ids) => ids[_random.Next(ids.Length)];

    private void Trace(string message)
    {
        _trace.Enqueue($"t={_now} {message}");
        if (_trace.Count > 60)
        {
            _trace.Dequeue();
        }
    }

    private bool Linked(int a, int b) => !_cutLinks.Contains((Math.Min(a, b), Math.Max(a, b)));

    private void ToggleLink()
    {
        var a = _random.Next(0, 4);
        var b = _random.Next(1, 4);
        if (a == b)
        {
            return;
        }

        var link = (Math.Min(a, b), Math.Max(a, b));
        if (!_cutLinks.Remove(link))
        {
            _cutLinks.Add(link);
        }

        Trace($"link {link} {(_cutLinks.Contains(link) ? "cut" : "healed")}");
    }

    private void Produce()
    {
        var candidates = _brokers.Values.Where(b => b.Alive && b.Serving && b.Leading is not null).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        var broker = candidates[_random.Next(candidates.Count)];
        var leading = broker.Leading!;
        if (leading.Isr.Length < MinInsyncReplicas)
        {
            Trace($"produce to {broker.Id}: NOT_ENOUGH_REPLICAS (ISR {string.Join(",", leading.Isr)})");
            return;
        }

        var value = _nextValue++;
        var offset = broker.Append(leading.LeaderEpoch, value);
        _pending.Add(new PendingAck(broker.Id, leading.LeaderEpoch, offset, value, _now));
        Trace($"produce v{value} to {broker.Id} (epoch {leading.LeaderEpoch}) at {offset}");
        if (leading.AdvanceHighWatermark(broker.LogEndOffset))
        {
            CompleteAcks(broker);
        }
    }

    private void Fetch(int followerId)
    {
        var follower = _brokers[followerId];
        if (!follower.Alive || follower.View is not { } view || view.Leader == followerId || view.Leader < 0)
        {
            return;
        }

        var leader = _brokers[view.Leader];
        if (!leader.Alive || !leader.Serving || !Linked(followerId, leader.Id))
        {
            return;
        }

        if (leader.Leading is not { } leading || leading.LeaderEpoch != view.LeaderEpoch)
        {
            Trace($"fetch {followerId}→{leader.Id} at epoch {view.LeaderEpoch}: refused (leader at {leader.Leading?.LeaderEpoch.ToString() ?? "none"})");
            return;
        }

        // A follower's fetch offset is durable: what it appended is fsynced before it fetches again.
        follower.Flushed = follower.LogEndOffset;
        var fetchOffset = follower.LogEndOffset;
        var lastFetchedEpoch = follower.Epochs.Count > 0 ? follower.Epochs[^1].Epoch : -1;
        if (EpochLineage.DivergingEpoch(leader.Epochs, leader.LogEndOffset, lastFetchedEpoch, fetchOffset) is { } diverging)
        {
            if (Lost())
            {
                return; // the answer is lost
            }

            var truncation = EpochLineage.TruncationFor(follower.Epochs, follower.LogEndOffset, follower.HighWatermark, diverging.Epoch, diverging.EndOffset);
            Trace($"fetch {followerId}→{leader.Id}: diverging {diverging}, truncate to {truncation.Offset}");
            follower.TruncateTo(truncation.Offset);
            return;
        }

        if (fetchOffset > leader.LogEndOffset)
        {
            throw Failure($"broker {followerId} fetched at {fetchOffset}, past leader {leader.Id}'s end {leader.LogEndOffset}, without diverging");
        }

        if (leading.RecordFetch(followerId, fetchOffset, follower.BrokerEpoch, leader.LogEndOffset, _now) == FetchRecordResult.HighWatermarkAdvanced)
        {
            CompleteAcks(leader);
        }

        if (Lost())
        {
            return; // the answer is lost
        }

        var count = (int)Math.Min(leader.LogEndOffset - fetchOffset, _random.Next(1, 20));
        for (var i = 0; i < count; i++)
        {
            var (epoch, value) = leader.Log[(int)fetchOffset + i];
            follower.Append(epoch, value);
        }

        follower.HighWatermark = Math.Min(leading.HighWatermark, follower.LogEndOffset);
        Trace($"fetch {followerId}→{leader.Id} at {fetchOffset}: {count} records, HW {leading.HighWatermark}");
    }

    private void CheckIsr(int leaderId)
    {
        var broker = _brokers[leaderId];
        if (!broker.Alive || broker.Leading is not { } leading)
        {
            return;
        }

        var proposal = leading.ShrinkCandidate(_now, LagTimeMaxMs)
            ?? leading.ExpandCandidate((id, epoch) => _registrations[id] is { Fenced: false } r && r.BrokerEpoch == epoch);
        if (proposal is not { } isr)
        {
            return;
        }

        if (!Linked(leaderId, ControllerNode))
        {
            return;
        }

        leading.Propose(isr);
        var accepted = _leader == leaderId && _leaderEpoch == leading.LeaderEpoch && _partitionEpoch == leading.PartitionEpoch
            && isr.Contains(leaderId) && isr.All(r => !_registrations[r].Fenced || _isr.Contains(r));
        Trace($"AlterPartition from {leaderId} (epoch {leading.LeaderEpoch}/{leading.PartitionEpoch}) ISR [{string.Join(",", isr)}]: {(accepted ? "accepted" : "refused")}");
        if (!accepted)
        {
            leading.ProposalFailed();
            return;
        }

        _isr = isr;
        _partitionEpoch++;
        if (Lost())
        {
            return; // the answer is lost: the proposal stays pending until metadata tells the leader
        }

        if (leading.Adopt(_isr, ReplicaIds, _partitionEpoch, broker.LogEndOffset, _now))
        {
            broker.View = broker.View! with { Isr = _isr, PartitionEpoch = _partitionEpoch };
        }

        CompleteAcks(broker);
    }

    private void Heartbeat(int id)
    {
        var broker = _brokers[id];
        if (!broker.Alive || !Linked(id, ControllerNode))
        {
            return;
        }

        var registration = _registrations[id];
        if (registration.BrokerEpoch != broker.BrokerEpoch && !registration.Fenced)
        {
            // A new incarnation replaces a registration still unfenced: the old one is fenced first (its partitions
            // move on at a new leader epoch), as the controller does at a re-registration.
            Trace($"broker {id} registers again (epoch {broker.BrokerEpoch}): its previous registration is fenced");
            _registrations[id] = registration with { Fenced = true };
            Fence(id);
        }

        if (registration.BrokerEpoch != broker.BrokerEpoch || registration.Fenced)
        {
            Trace($"broker {id} registers (epoch {broker.BrokerEpoch}) and is unfenced");
        }

        _registrations[id] = (false, broker.BrokerEpoch, _now);
        ElectIfLeaderless();

        // Unfenced only once it has caught up with the metadata up to its registration: it knows where leadership
        // went before it serves.
        if (!broker.Serving)
        {
            LearnMetadata(broker);
            broker.Serving = true;
        }
    }

    private void ControllerTick()
    {
        foreach (var id in ReplicaIds)
        {
            var registration = _registrations[id];
            if (!registration.Fenced && _now - registration.LastHeartbeatMs > SessionTimeoutMs)
            {
                _registrations[id] = registration with { Fenced = true };
                Trace($"controller fences {id}");
                Fence(id);
            }
        }

        ElectIfLeaderless();
    }

    /// <summary>A fenced broker leaves the ISR (unless it is the last member) and leads no more.</summary>
    private void Fence(int id)
    {
        var isr = _isr.Length > 1 ? _isr.Remove(id) : _isr;
        if (_leader == id)
        {
            ChangePartition(ElectFrom(isr.Remove(id)), isr, newLeader: true);
        }
        else if (isr != _isr)
        {
            ChangePartition(_leader, isr, newLeader: false);
        }
    }

    private void ElectIfLeaderless()
    {
        if (_leader < 0 && ElectFrom(_isr) is var next and > 0)
        {
            ChangePartition(next, _isr, newLeader: true);
        }
    }

    /// <summary>A clean election: any unfenced ISR member (Kafka takes the first in replica order; any is as safe).</summary>
    private int ElectFrom(ImmutableArray<int> isr)
    {
        var eligible = isr.Where(r => !_registrations[r].Fenced).ToList();
        return eligible.Count == 0 ? -1 : eligible[_random.Next(eligible.Count)];
    }

    private void ChangePartition(int leader, ImmutableArray<int> isr, bool newLeader)
    {
        _leader = leader;
        _isr = isr;
        _partitionEpoch++;
        if (newLeader)
        {
            _leaderEpoch++;
        }

        Trace($"controller: leader {_leader}, epoch {_leaderEpoch}, ISR [{string.Join(",", _isr)}], partition epoch {_partitionEpoch}");
    }

    /// <summary>A broker takes the controller's current state of the partition (a metadata update reaching it).</summary>
    private void LearnMetadata(SimBroker broker)
    {
        if (!broker.Alive || !Linked(broker.Id, ControllerNode) && broker.View is not null)
        {
            return;
        }

        broker.View = new PartitionView(_leader, _leaderEpoch, _partitionEpoch, _isr);
        if (_leader == broker.Id)
        {
            if (broker.Leading is { } leading && leading.LeaderEpoch == _leaderEpoch)
            {
                leading.Adopt(_isr, ReplicaIds, _partitionEpoch, broker.LogEndOffset, _now);
                CompleteAcks(broker);
                return;
            }

            // Leader at a new epoch: the epoch starts at its log end (KIP-279), the high watermark is its own.
            broker.AssignEpoch(_leaderEpoch, broker.LogEndOffset);
            broker.Leading = new LeaderState(broker.Id, _leaderEpoch, _partitionEpoch, ReplicaIds, _isr, broker.LogEndOffset, broker.HighWatermark, _now);
            Trace($"broker {broker.Id} leads epoch {_leaderEpoch} from {broker.LogEndOffset} (HW {broker.HighWatermark})");
            CompleteAcks(broker);
        }
        else if (broker.Leading is not null)
        {
            broker.Leading = null;
            Trace($"broker {broker.Id} follows {_leader} at epoch {_leaderEpoch}");
        }
    }

    private void Crash(int id)
    {
        var broker = _brokers[id];
        if (!broker.Alive)
        {
            return;
        }

        broker.Alive = false;
        broker.Leading = null;
        broker.View = null;
        Trace($"broker {id} crashes (log end {broker.LogEndOffset}, on disk up to {broker.Flushed})");

        // What was not fsynced is lost with the page cache (a power loss, not only a process kill).
        broker.TruncateTo(broker.Flushed);
    }

    /// <summary>A group-commit round: what the broker appended is on disk; acks=all waiting for it may complete.</summary>
    private void Flush(int id)
    {
        var broker = _brokers[id];
        if (broker.Alive && broker.Flushed < broker.LogEndOffset)
        {
            broker.Flushed = broker.LogEndOffset;
            CompleteAcks(broker);
        }
    }

    private void Restart(int id)
    {
        var broker = _brokers[id];
        if (broker.Alive)
        {
            return;
        }

        broker.Alive = true;
        broker.Serving = false;
        broker.BrokerEpoch = _nextBrokerEpoch++;
        Trace($"broker {id} restarts (log end {broker.LogEndOffset})");
    }

    /// <summary>Answers the acks=all requests the high watermark of <paramref name="broker"/> now covers.</summary>
    private void CompleteAcks(SimBroker broker)
    {
        // The high watermark checkpoint is written now and then: a restarted leader may start from an older one.
        if (broker.Leading is { } current && _random.Next(2) == 0)
        {
            broker.HighWatermark = current.HighWatermark;
        }

        foreach (var ack in _pending.ToList())
        {
            if (_now - ack.CreatedMs > RequestTimeoutMs)
            {
                _pending.Remove(ack);
                continue;
            }

            var owner = _brokers[ack.Broker];
            if (owner.Leading is not { } leading || leading.LeaderEpoch != ack.LeaderEpoch)
            {
                _pending.Remove(ack); // NOT_LEADER_OR_FOLLOWER (or the broker died): not acknowledged
                continue;
            }

            // acks=all: every in-sync replica has it (the high watermark) and the leader has fsynced it.
            if (ack.Broker != broker.Id || leading.HighWatermark <= ack.Offset || broker.Flushed <= ack.Offset)
            {
                continue;
            }

            _pending.Remove(ack);
            if (leading.Isr.Length < MinInsyncReplicas)
            {
                Trace($"v{ack.Value}: NOT_ENOUGH_REPLICAS_AFTER_APPEND");
                continue;
            }

            if (broker.Log[(int)ack.Offset].Value != ack.Value)
            {
                throw Failure($"broker {broker.Id} acknowledged v{ack.Value} at {ack.Offset}, but holds v{broker.Log[(int)ack.Offset].Value} there");
            }

            _acked.Add((ack.Offset, ack.Value));
            Trace($"v{ack.Value} acknowledged by {broker.Id} at {ack.Offset} (HW {leading.HighWatermark})");
        }
    }

    private void CheckInvariants()
    {
        // The controller's partition: a leader is in the ISR; the ISR is never empty.
        if (_isr.Length == 0 || (_leader >= 0 && !_isr.Contains(_leader)))
        {
            throw Failure($"controller: leader {_leader}, ISR [{string.Join(",", _isr)}]");
        }

        foreach (var broker in _brokers.Values)
        {
            if (broker.HighWatermark > broker.LogEndOffset)
            {
                throw Failure($"broker {broker.Id}: high watermark {broker.HighWatermark} past its log end {broker.LogEndOffset}");
            }

            // A leadership's high watermark never goes back (a restarted leader starts again from its checkpoint).
            if (broker.Leading is { } leading)
            {
                var key = (broker.Id, leading.LeaderEpoch, broker.BrokerEpoch);
                if (_highWatermarks.TryGetValue(key, out var before) && leading.HighWatermark < before)
                {
                    throw Failure($"broker {broker.Id} (epoch {leading.LeaderEpoch}): high watermark went back from {before} to {leading.HighWatermark}");
                }

                _highWatermarks[key] = leading.HighWatermark;
            }
        }

        // The controller's leader, once it acts as leader of the current epoch, holds every acknowledged record.
        if (_leader >= 0 && _brokers[_leader] is { Alive: true, Leading: { } current } leader && current.LeaderEpoch == _leaderEpoch)
        {
            foreach (var (offset, value) in _acked)
            {
                if (leader.LogEndOffset <= offset || leader.Log[(int)offset].Value != value)
                {
                    throw Failure($"leader {leader.Id} (epoch {_leaderEpoch}) lost acknowledged v{value} at {offset}: it has {(leader.LogEndOffset <= offset ? "nothing" : $"v{leader.Log[(int)offset].Value}")} there");
                }
            }
        }

        // Below both their high watermarks, any two live in-sync replicas agree. (A replica outside the ISR may keep
        // records of an old history that a power loss took from the ISR before any of them was acknowledged: what is
        // below a high watermark but not yet fsynced by the leader is committed, not durable, as in Kafka.)
        var inSync = _brokers.Values.Where(b => b.Alive && _isr.Contains(b.Id)).ToList();
        foreach (var a in inSync)
        {
            foreach (var b in inSync.Where(b => b.Id > a.Id))
            {
                var below = Math.Min(LeaderOrOwnHighWatermark(a), LeaderOrOwnHighWatermark(b));
                for (var o = 0; o < below; o++)
                {
                    if (a.Log[o] != b.Log[o])
                    {
                        throw Failure($"brokers {a.Id} and {b.Id} differ at {o}, below both high watermarks: {a.Log[o]} vs {b.Log[o]}");
                    }
                }
            }
        }
    }

    private static long LeaderOrOwnHighWatermark(SimBroker broker) => broker.Leading?.HighWatermark ?? broker.HighWatermark;

    /// <summary>Every fault ends: links heal, brokers come back, metadata spreads, and followers fetch until all agree.</summary>
    private void Heal()
    {
        _cutLinks.Clear();
        foreach (var id in ReplicaIds)
        {
            Restart(id);
        }

        for (var round = 0; round < 400; round++)
        {
            _now += 100;
            foreach (var id in ReplicaIds)
            {
                Heartbeat(id);
                LearnMetadata(_brokers[id]);
                Fetch(id);
                CheckIsr(id);
                Flush(id);
            }

            CheckInvariants();
        }

        var leader = _brokers[_leader];
        if (leader.Leading is not { } leading || leading.Isr.Length != ReplicaIds.Length || leading.HighWatermark != leader.LogEndOffset)
        {
            throw Failure($"after healing: leader {_leader}, ISR [{string.Join(",", _isr)}], HW {leader.Leading?.HighWatermark} of {leader.LogEndOffset}");
        }

        foreach (var broker in _brokers.Values.Where(b => b != leader))
        {
            if (!broker.Log.SequenceEqual(leader.Log))
            {
                throw Failure($"after healing: broker {broker.Id}'s log ({broker.LogEndOffset}) differs from leader {leader.Id}'s ({leader.LogEndOffset})");
            }
        }

        CheckInvariants();
    }

    private InvalidOperationException Failure(string what) =>
        new($"Seed {_seed}: {what}.{Environment.NewLine}Last events:{Environment.NewLine}{string.Join(Environment.NewLine, _trace)}");

    private sealed record PendingAck(int Broker, int LeaderEpoch, long Offset, int Value, long CreatedMs);

    private sealed record PartitionView(int Leader, int LeaderEpoch, int PartitionEpoch, ImmutableArray<int> Isr);

    private sealed class SimBroker(int id)
    {
        public int Id { get; } = id;

        public bool Alive { get; set; } = true;

        /// <summary>Serves requests: only once its registration of this incarnation is unfenced (the serving gate).</summary>
        public bool Serving { get; set; } = true;

        public long BrokerEpoch { get; set; }

        public List<(int Epoch, int Value)> Log { get; } = [];

        /// <summary>The leader-epoch entries, as <see cref="LeaderEpochCache"/> keeps them.</summary>
        public List<(int Epoch, long StartOffset)> Epochs { get; } = [];

        public long HighWatermark { get; set; }

        /// <summary>The log is on disk below this offset; a crash loses the rest.</summary>
        public long Flushed { get; set; }

        public PartitionView? View { get; set; }

        public LeaderState? Leading { get; set; }

        public long LogEndOffset => Log.Count;

        public long Append(int epoch, int value)
        {
            AssignEpoch(epoch, Log.Count);
            Log.Add((epoch, value));
            return Log.Count - 1;
        }

        public void AssignEpoch(int epoch, long startOffset)
        {
            if (Epochs.Count == 0 || epoch > Epochs[^1].Epoch)
            {
                Epochs.Add((epoch, startOffset));
            }
        }

        public void TruncateTo(long offset)
        {
            if (offset < Log.Count)
            {
                Log.RemoveRange((int)offset, Log.Count - (int)offset);
            }

            Epochs.RemoveAll(e => e.StartOffset >= offset);
            HighWatermark = Math.Min(HighWatermark, offset);
            Flushed = Math.Min(Flushed, offset);
        }
    }
}
