using System.Collections.Immutable;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Storage;

namespace Osprey.Broker.Replication;

/// <summary>What a follower's fetch found at the leader.</summary>
/// <param name="Error">NOT_LEADER_OR_FOLLOWER when this node does not lead the partition (or the fetcher holds no replica).</param>
/// <param name="Diverging">The leader's epoch and end offset where the follower's log parts from it: send no records.</param>
public readonly record struct FollowerFetch(ErrorCode Error, (int Epoch, long EndOffset)? Diverging, bool HighWatermarkAdvanced);

/// <summary>
/// One partition this broker holds a replica of: its log, its role from the metadata (leader or follower, the
/// leader epoch, replicas and ISR), and, when it leads, the <see cref="LeaderState"/> that tracks its followers and
/// the acks=all requests waiting for them. Thread-safe: the metadata publisher, produce and fetch requests call it
/// concurrently, each under the partition's lock for what it changes.
/// </summary>
public sealed class Partition
{
    private readonly Lock _lock = new();
    private readonly int _nodeId;
    private readonly List<ReplicationWaiter> _waiters = [];
    private LeaderState? _leader;
    private long _followerHighWatermark;

    public Partition(string topic, Guid topicId, int index, PartitionLog log, int nodeId, long checkpointedHighWatermark)
    {
        Topic = topic;
        TopicId = topicId;
        Index = index;
        Log = log;
        _nodeId = nodeId;
        _followerHighWatermark = checkpointedHighWatermark;
    }

    public string Topic { get; }

    public Guid TopicId { get; }

    public int Index { get; }

    public PartitionLog Log { get; }

    /// <summary>The leader the metadata names (-1: none).</summary>
    public int LeaderId { get; private set; } = -1;

    public int LeaderEpoch { get; private set; } = -1;

    public ImmutableArray<int> Replicas { get; private set; } = [];

    /// <summary>The ISR the controller committed (as this node last heard it).</summary>
    public ImmutableArray<int> Isr { get; private set; } = [];

    public bool IsLeader => Volatile.Read(ref _leader) is not null;

    /// <summary>
    /// The high watermark: what every in-sync replica holds (consumers read below it). On a leader whose ISR is itself
    /// alone it is the log end offset, whoever appended.
    /// </summary>
    public long HighWatermark
    {
        get
        {
            lock (_lock)
            {
                if (_leader is { } leader)
                {
                    leader.AdvanceHighWatermark(Log.LogEndOffset);
                    return leader.HighWatermark;
                }

                return Math.Min(_followerHighWatermark, Log.LogEndOffset);
            }
        }
    }

    /// <summary>
    /// Takes the partition's state from the metadata. Leading at a new epoch starts a leadership: the epoch is
    /// recorded at the log end (so followers asking about the previous epoch get its end, KIP-279), followers'
    /// progress starts afresh, and the high watermark starts from what this replica knew. Losing the leadership fails
    /// the acks=all requests still waiting. True when the role or epoch changed.
    /// </summary>
    public bool Apply(PartitionImage image, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(image);
        lock (_lock)
        {
            var changed = image.Leader != LeaderId || image.LeaderEpoch != LeaderEpoch;
            try
            {
                return ApplyRole(image, nowMs) || changed;
            }
            finally
            {
                // Published after the role, so that a reader who sees this node named leader finds it leading.
                (LeaderId, LeaderEpoch, Replicas, Isr) = (image.Leader, image.LeaderEpoch, image.Replicas, image.Isr);
            }
        }
    }

    /// <summary>The role part of <see cref="Apply"/> (under the lock): true when this node started or stopped leading.</summary>
    private bool ApplyRole(PartitionImage image, long nowMs)
    {
        if (image.Leader == _nodeId)
        {
            if (_leader is { } current && current.LeaderEpoch == image.LeaderEpoch)
            {
                current.Adopt(image.Isr, image.Replicas, image.PartitionEpoch, Log.LogEndOffset, nowMs);
                CompleteWaiters();
                return false;
            }

            var highWatermark = _leader?.HighWatermark ?? Math.Min(_followerHighWatermark, Log.LogEndOffset);
            FailWaiters(ErrorCode.NotLeaderOrFollower);
            Log.LeaderEpochs.Assign(image.LeaderEpoch, Log.LogEndOffset);
            Volatile.Write(ref _leader, new LeaderState(_nodeId, image.LeaderEpoch, image.PartitionEpoch, image.Replicas, image.Isr, Log.LogEndOffset, highWatermark, nowMs));
            CompleteWaiters();
            return true;
        }

        if (_leader is { } previous)
        {
            _followerHighWatermark = previous.HighWatermark;
            Volatile.Write(ref _leader, null);
            FailWaiters(ErrorCode.NotLeaderOrFollower);
            return true;
        }

        return false;
    }

    /// <summary>
    /// Whether a request naming <paramref name="currentLeaderEpoch"/> (-1: none) may be served by this replica as the
    /// leader: NOT_LEADER_OR_FOLLOWER when it does not lead, FENCED_LEADER_EPOCH when the client's epoch is older,
    /// UNKNOWN_LEADER_EPOCH when newer (this node has not heard of it yet).
    /// </summary>
    public ErrorCode CheckLeader(int currentLeaderEpoch)
    {
        var leader = Volatile.Read(ref _leader);
        if (currentLeaderEpoch >= 0 && leader is not null && currentLeaderEpoch != leader.LeaderEpoch)
        {
            return currentLeaderEpoch < leader.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch;
        }

        return leader is null ? ErrorCode.NotLeaderOrFollower : ErrorCode.None;
    }

    /// <summary>
    /// A leader whose high watermark has not yet reached the start of its epoch (KIP-207): it cannot yet tell what is
    /// committed, so offset lookups answer OFFSET_NOT_AVAILABLE (retriable) until its followers catch up.
    /// </summary>
    public bool HighWatermarkBehindEpochStart
    {
        get
        {
            lock (_lock)
            {
                if (_leader is not { } leader)
                {
                    return false;
                }

                leader.AdvanceHighWatermark(Log.LogEndOffset);
                return leader.HighWatermark < leader.EpochStartOffset;
            }
        }
    }

    /// <summary>The epoch to stamp on appended batches: the current leadership's (-1 when not leading).</summary>
    public int AppendEpoch => Volatile.Read(ref _leader)?.LeaderEpoch ?? -1;

    /// <summary>acks=all is refused before appending while the committed ISR is smaller than <paramref name="minInsyncReplicas"/>.</summary>
    public bool HasEnoughReplicas(int minInsyncReplicas)
    {
        lock (_lock)
        {
            return (_leader?.Isr ?? Isr).Length >= minInsyncReplicas;
        }
    }

    /// <summary>
    /// Appends records as the leader at <paramref name="leaderEpoch"/>, checked and written in one step with role
    /// changes (the coordinators' writes, which must never land in another leadership than the one they loaded at):
    /// <see cref="KafkaProtocolException"/> NOT_LEADER_OR_FOLLOWER when this replica does not lead at that epoch.
    /// </summary>
    public AppendResult AppendAsLeader(ReadOnlySpan<byte> records, AppendOrigin origin, int leaderEpoch)
    {
        lock (_lock)
        {
            if (_leader is not { } leader || leader.LeaderEpoch != leaderEpoch)
            {
                throw new KafkaProtocolException(ErrorCode.NotLeaderOrFollower, $"{Topic}-{Index}: this broker does not lead it at leader epoch {leaderEpoch}.");
            }

            var result = Log.Append(records, origin, leaderEpoch);
            leader.AdvanceHighWatermark(Log.LogEndOffset);
            CompleteWaiters();
            return result;
        }
    }

    /// <summary>Records appended as leader: the high watermark may move (at once when the leader is the whole ISR).</summary>
    public void OnAppended()
    {
        lock (_lock)
        {
            if (_leader is { } leader)
            {
                leader.AdvanceHighWatermark(Log.LogEndOffset);
                CompleteWaiters();
            }
        }
    }

    /// <summary>
    /// A follower's fetch at <paramref name="fetchOffset"/> after a batch of <paramref name="lastFetchedEpoch"/>: its
    /// log is checked against the leader's by epochs (a divergence is answered, not recorded), then its progress is
    /// recorded and the high watermark moved.
    /// </summary>
    public FollowerFetch RecordFollowerFetch(int replicaId, long brokerEpoch, long fetchOffset, int lastFetchedEpoch, long nowMs)
    {
        lock (_lock)
        {
            if (_leader is not { } leader)
            {
                return new FollowerFetch(ErrorCode.NotLeaderOrFollower, null, false);
            }

            var end = Log.LogEndOffset;
            if (EpochLineage.DivergingEpoch(Log.LeaderEpochs.Entries, end, lastFetchedEpoch, fetchOffset) is { } diverging)
            {
                return new FollowerFetch(ErrorCode.None, diverging, false);
            }

            if (fetchOffset > end)
            {
                return new FollowerFetch(ErrorCode.OffsetOutOfRange, null, false);
            }

            var recorded = leader.RecordFetch(replicaId, fetchOffset, brokerEpoch, end, nowMs);
            if (recorded == FetchRecordResult.NotAReplica)
            {
                return new FollowerFetch(ErrorCode.NotLeaderOrFollower, null, false);
            }

            CompleteWaiters();
            return new FollowerFetch(ErrorCode.None, null, recorded == FetchRecordResult.HighWatermarkAdvanced);
        }
    }

    /// <summary>
    /// The ISR change this leader should ask the controller for now, if any: followers that lagged for longer than
    /// <paramref name="lagTimeMaxMs"/> out, or followers that caught up (on brokers <paramref name="eligible"/>
    /// accepts) in. The change becomes pending (the high watermark waits for the larger of the two ISRs) until
    /// <see cref="IsrChangeAnswered"/>.
    /// </summary>
    public (ImmutableArray<int> Isr, int LeaderEpoch, int PartitionEpoch)? ProposeIsrChange(long nowMs, long lagTimeMaxMs, Func<int, long, bool> eligible)
    {
        lock (_lock)
        {
            if (_leader is not { } leader || (leader.ShrinkCandidate(nowMs, lagTimeMaxMs) ?? leader.ExpandCandidate(eligible)) is not { } isr)
            {
                return null;
            }

            leader.Propose(isr);
            return (isr, leader.LeaderEpoch, leader.PartitionEpoch);
        }
    }

    /// <summary>
    /// The controller's answer to a proposal made at <paramref name="leaderEpoch"/>: the ISR it committed and its
    /// partition epoch, or null when it refused (or could not be asked), after which the next check proposes again.
    /// </summary>
    public void IsrChangeAnswered(int leaderEpoch, IReadOnlyList<int>? isr, int partitionEpoch, long nowMs)
    {
        lock (_lock)
        {
            if (_leader is not { } leader || leader.LeaderEpoch != leaderEpoch)
            {
                return;
            }

            if (isr is null || !leader.Adopt(isr, leader.Replicas, partitionEpoch, Log.LogEndOffset, nowMs))
            {
                leader.ProposalFailed();
            }

            CompleteWaiters();
        }
    }

    /// <summary>
    /// Appends what a follower fetched from the leader at <paramref name="fetchedAtEpoch"/>, keeping the leader's
    /// offsets and epochs, and takes the leader's high watermark (as far as this log reaches) and log start offset.
    /// Nothing happens (null) when the partition's role or leader epoch changed since the fetch was sent.
    /// </summary>
    public AppendResult? AppendAsFollower(int fetchedAtEpoch, ReadOnlySpan<byte> records, long leaderHighWatermark, long leaderLogStartOffset)
    {
        lock (_lock)
        {
            if (_leader is not null || LeaderEpoch != fetchedAtEpoch)
            {
                return null;
            }

            AppendResult? appended = records.IsEmpty ? null : Log.Append(records, AppendOrigin.Replication);
            if (leaderHighWatermark >= 0)
            {
                _followerHighWatermark = Math.Min(leaderHighWatermark, Log.LogEndOffset);
            }

            if (leaderLogStartOffset > Log.LogStartOffset && leaderLogStartOffset <= Log.LogEndOffset)
            {
                Log.DeleteRecordsBefore(leaderLogStartOffset);
            }

            return appended;
        }
    }

    /// <summary>
    /// A follower's log parts from the leader's (a DivergingEpoch answer at <paramref name="fetchedAtEpoch"/>): it is
    /// truncated by epochs (<see cref="EpochLineage.TruncationFor"/>). Returns the offset truncated to, or null when
    /// the role or leader epoch changed since the fetch.
    /// </summary>
    public long? TruncateAsFollower(int fetchedAtEpoch, int divergingEpoch, long divergingEndOffset)
    {
        lock (_lock)
        {
            if (_leader is not null || LeaderEpoch != fetchedAtEpoch)
            {
                return null;
            }

            var truncation = EpochLineage.TruncationFor(Log.LeaderEpochs.Entries, Log.LogEndOffset, Math.Min(_followerHighWatermark, Log.LogEndOffset), divergingEpoch, divergingEndOffset);
            Log.TruncateTo(truncation.Offset);
            _followerHighWatermark = Math.Min(_followerHighWatermark, Log.LogEndOffset);
            return truncation.Offset;
        }
    }

    /// <summary>
    /// The leader no longer has what this follower lacks (its log start, <paramref name="leaderLogStartOffset"/>, is
    /// past this log's end): the log starts over, empty, at the leader's start. False when the role or leader epoch
    /// changed since the fetch, or the log is not behind after all.
    /// </summary>
    public bool StartOverAsFollower(int fetchedAtEpoch, long leaderLogStartOffset)
    {
        lock (_lock)
        {
            if (_leader is not null || LeaderEpoch != fetchedAtEpoch || leaderLogStartOffset <= Log.LogEndOffset)
            {
                return false;
            }

            Log.TruncateFullyAndStartAt(leaderLogStartOffset);
            _followerHighWatermark = leaderLogStartOffset;
            return true;
        }
    }

    /// <summary>The epoch of the last batch this log holds, which a follower's fetch names (-1: none).</summary>
    public int LastFetchedEpoch => Log.LeaderEpochs.LatestEpoch ?? -1;

    /// <summary>
    /// Waits until the high watermark passes <paramref name="lastOffset"/> (every in-sync replica has the records),
    /// then answers NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR has meanwhile shrunk below
    /// <paramref name="minInsyncReplicas"/>; NOT_LEADER_OR_FOLLOWER if the leadership ends first, REQUEST_TIMED_OUT
    /// after <paramref name="timeout"/>.
    /// </summary>
    public async Task<ErrorCode> WaitForReplicationAsync(long lastOffset, int minInsyncReplicas, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        ReplicationWaiter waiter;
        lock (_lock)
        {
            if (_leader is not { } leader)
            {
                return ErrorCode.NotLeaderOrFollower;
            }

            leader.AdvanceHighWatermark(Log.LogEndOffset);
            if (leader.HighWatermark > lastOffset)
            {
                return leader.Isr.Length >= minInsyncReplicas ? ErrorCode.None : ErrorCode.NotEnoughReplicasAfterAppend;
            }

            waiter = new ReplicationWaiter(lastOffset, minInsyncReplicas);
            _waiters.Add(waiter);
        }

        try
        {
            return await waiter.Done.Task.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return ErrorCode.RequestTimedOut;
        }
        finally
        {
            lock (_lock)
            {
                _waiters.Remove(waiter);
            }
        }
    }

    /// <summary>The partition leaves this broker (deleted, or no longer a replica here): waiting requests are answered.</summary>
    public void Close()
    {
        lock (_lock)
        {
            Volatile.Write(ref _leader, null);
            FailWaiters(ErrorCode.NotLeaderOrFollower);
        }
    }

    private void CompleteWaiters()
    {
        if (_leader is not { } leader || _waiters.Count == 0)
        {
            return;
        }

        foreach (var waiter in _waiters)
        {
            if (leader.HighWatermark > waiter.LastOffset)
            {
                waiter.Done.TrySetResult(leader.Isr.Length >= waiter.MinInsyncReplicas ? ErrorCode.None : ErrorCode.NotEnoughReplicasAfterAppend);
            }
        }
    }

    private void FailWaiters(ErrorCode error)
    {
        foreach (var waiter in _waiters)
        {
            waiter.Done.TrySetResult(error);
        }
    }

    private sealed class ReplicationWaiter(long lastOffset, int minInsyncReplicas)
    {
        public long LastOffset { get; } = lastOffset;

        public int MinInsyncReplicas { get; } = minInsyncReplicas;

        public TaskCompletionSource<ErrorCode> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
