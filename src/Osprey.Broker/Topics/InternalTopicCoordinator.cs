using Microsoft.Extensions.Logging;
using Osprey.Broker.Network;
using Osprey.Broker.Replication;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>One partition of a coordinator's internal topic, and the state built from it. Changed under <see cref="Lock"/>.</summary>
public abstract class InternalTopicShard(int partition)
{
    public int Partition { get; } = partition;

    public SemaphoreSlim Lock { get; } = new(1, 1);

    /// <summary>The state is built and this broker serves the shard (it leads the partition at <see cref="LeaderEpoch"/>).</summary>
    public volatile bool Loaded;

    /// <summary>The leadership the shard was loaded in: its writes are appended at this epoch or not at all.</summary>
    public int LeaderEpoch { get; set; } = -1;

    /// <summary>The partition's replica on this broker, which the shard's writes go through.</summary>
    public Partition? Replica { get; set; }

    public PartitionLog? Log => Replica?.Log;
}

/// <summary>How a coordinator's internal topic is made and written.</summary>
public sealed record InternalTopicSettings(int Partitions, int SegmentBytes, short ReplicationFactor, int? MinInsyncReplicas, int WriteTimeoutMs);

/// <summary>The broker's parts a coordinator of an internal topic works with (one instance, shared by both coordinators).</summary>
public sealed record InternalTopicServices(
    IMetadataQuorum Metadata, LogManager Logs, ReplicaManager Replicas, TopicCreator Creator, ServingGate Gate, AppendNotifier Notifier, BrokerOptions Options)
{
    /// <summary>
    /// Appends a batch as the leader of <paramref name="replica"/> at <paramref name="leaderEpoch"/>, wakes the fetches
    /// waiting for it (followers take it at once), and waits until it is on disk and every in-sync replica has it:
    /// NOT_LEADER_OR_FOLLOWER when this broker does not lead at that epoch, else the replication's answer.
    /// </summary>
    public async Task<(AppendResult? Written, ErrorCode Error)> AppendAsLeaderAsync(
        Partition replica, ReadOnlyMemory<byte> batch, AppendOrigin origin, int leaderEpoch, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(replica);
        AppendResult written;
        try
        {
            written = replica.AppendAsLeader(batch.Span, origin, leaderEpoch);
        }
        catch (KafkaProtocolException e) when (e.ErrorCode == ErrorCode.NotLeaderOrFollower)
        {
            return (null, e.ErrorCode);
        }

        Notifier.Notify();
        await Logs.WhenDurable(replica.Log, written, durable: true).ConfigureAwait(false);
        return (written, await replica.WaitForReplicationAsync(written.LastOffset, replica.Log.Config.MinInsyncReplicas, timeout, Options.Time, cancellationToken).ConfigureAwait(false));
    }
}

/// <summary>
/// What the group and transaction coordinators share: their state lives in a compacted internal topic, one shard
/// per partition; a key (group id, transactional id) belongs to partition abs(Java String.hashCode) % partitions,
/// as in Kafka. The topic is created on first use, through the active controller. A shard lives with the leadership
/// of its partition, as Kafka's coordinators do: this broker loads it (replays the partition into state) when it
/// becomes the leader, at each new leader epoch, and drops it when it stops leading. Meanwhile a key of a shard this
/// broker leads but has not loaded answers COORDINATOR_LOAD_IN_PROGRESS, and one of a shard led elsewhere
/// NOT_COORDINATOR. Writes go through the partition's leader at the epoch the shard was loaded in, and are answered
/// once every in-sync replica has them.
/// </summary>
public abstract partial class InternalTopicCoordinator<TShard> : IMetadataPublisher
    where TShard : InternalTopicShard
{
    private readonly string _topic;
    private readonly IMetadataQuorum _metadata;
    private readonly InternalTopicServices _services;
    private readonly ReplicaManager _replicas;
    private readonly TopicCreator _creator;
    private readonly ServingGate _gate;
    private readonly InternalTopicSettings _settings;
    private readonly Func<int, TShard> _newShard;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _startLock = new(1, 1);
    private readonly SemaphoreSlim _leadershipChanged = new(0, 1);
    private Task _following = Task.CompletedTask;
    private ITimer? _periodic;

    protected InternalTopicCoordinator(string topic, InternalTopicServices services, InternalTopicSettings settings, Func<int, TShard> newShard, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(settings);
        _topic = topic;
        _services = services;
        (_metadata, _replicas, _creator, _gate) = (services.Metadata, services.Replicas, services.Creator, services.Gate);
        _newShard = newShard;
        _time = services.Options.Time;
        _logger = logger;

        // A single node has one broker to place replicas on; a cluster's internal topics take Kafka's defaults.
        _settings = services.Options.IsCluster ? settings : settings with { ReplicationFactor = 1 };
        Shards = [.. Enumerable.Range(0, _metadata.Image.Topic(topic)?.Partitions.Count ?? settings.Partitions).Select(newShard)];
    }

    protected TShard[] Shards { get; }

    protected CancellationTokenSource Stop { get; } = new();

    protected TimeProvider Time => _time;

    /// <summary>The topic exists and every shard this broker leads is loaded at its current epoch.</summary>
    internal bool AllLoaded => _metadata.Image.Topic(_topic) is not null
        && Enumerable.Range(0, Shards.Length).All(i => LeaderEpochHere(i) is var epoch && (epoch < 0 || (Shards[i].Loaded && Shards[i].LeaderEpoch == epoch)));

    /// <summary>The partition of a key: abs(Java String.hashCode) modulo the partition count.</summary>
    public int PartitionFor(string key)
    {
        var hash = 0;
        foreach (var c in key)
        {
            hash = unchecked((31 * hash) + c);
        }

        return (hash == int.MinValue ? 0 : Math.Abs(hash)) % Shards.Length;
    }

    /// <summary>The broker leading the partition of <paramref name="key"/> (-1: none), once the topic exists.</summary>
    public int CoordinatorOf(string key) =>
        _metadata.Image.Topic(_topic)?.Partitions.GetValueOrDefault(PartitionFor(key)) is { } partition ? partition.Leader : -1;

    /// <summary>The leader epoch at which this broker leads partition <paramref name="index"/> (-1: it does not lead it).</summary>
    private int LeaderEpochHere(int index) => _replicas.Get(_topic, index)?.AppendEpoch ?? -1;

    /// <summary>Starts following the partitions' leadership (call at the end of the derived constructor).</summary>
    protected void StartFollowingLeadership(long periodicIntervalMs, Func<TShard, Task> periodicWork)
    {
        _metadata.AddPublisher(this);
        var interval = TimeSpan.FromMilliseconds(periodicIntervalMs);
        _periodic = _time.CreateTimer(_ => _ = ForEachLoadedShardAsync(periodicWork), null, interval, interval);
        _following = FollowLeadershipAsync();
    }

    /// <summary>Wakes the loop that loads and unloads shards when the metadata changed a partition (the deltas come one at a time, in order).</summary>
    public virtual ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (delta.ChangedPartitions.Any(p => p.Topic == _topic) || delta.CreatedTopics.Any(t => t.Name == _topic))
        {
            SignalLeadershipChanged();
        }

        return ValueTask.CompletedTask;
    }

    private void SignalLeadershipChanged()
    {
        try
        {
            _leadershipChanged.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled: the loop looks at every shard once it wakes.
        }
    }

    /// <summary>
    /// Loads the shards this broker leads and drops those it no longer leads (or leads at another epoch: another
    /// leader may have written in between), one shard at a time, once the broker serves (a restarting broker's
    /// leaderships are settled by then, so it does not load what it is about to lose).
    /// </summary>
    private async Task FollowLeadershipAsync()
    {
        try
        {
            await Task.Yield();
            await _gate.WhenOpen.WaitAsync(Stop.Token).ConfigureAwait(false);
            while (true)
            {
                for (var i = 0; i < Shards.Length; i++)
                {
                    await FollowAsync(i).ConfigureAwait(false);
                }

                await _leadershipChanged.WaitAsync(Stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task FollowAsync(int index)
    {
        var epoch = LeaderEpochHere(index);
        var shard = Shards[index];
        if (shard.Loaded ? shard.LeaderEpoch == epoch : epoch < 0 || shard.LeaderEpoch == epoch)
        {
            return; // as it should be (a load that failed at this epoch is not tried again until the epoch changes)
        }

        if (shard.Loaded || shard.LeaderEpoch >= 0)
        {
            await shard.Lock.WaitAsync(Stop.Token).ConfigureAwait(false);
            try
            {
                if (shard.Loaded)
                {
                    shard.Loaded = false;
                    await UnloadAsync(shard).ConfigureAwait(false);
                    LogUnloaded(_logger, _topic, index, shard.LeaderEpoch, epoch);
                }

                Shards[index] = _newShard(index);
            }
            finally
            {
                shard.Lock.Release();
            }
        }

        if (epoch < 0 || _replicas.Get(_topic, index) is not { } replica)
        {
            return;
        }

        shard = Shards[index];
        await shard.Lock.WaitAsync(Stop.Token).ConfigureAwait(false);
        try
        {
            shard.Replica = replica;
            shard.LeaderEpoch = epoch;
            await LoadAsync(shard).ConfigureAwait(false);
            shard.Loaded = true;
        }
        catch (Exception e) when (e is KafkaStorageException or KafkaProtocolException or IOException or InvalidOperationException)
        {
            // Not loaded; a shard state half built from what was read is never served. Tried again at the next epoch.
            LogLoadFailed(_logger, _topic, index, epoch, e);
            return;
        }
        finally
        {
            shard.Lock.Release();
        }

        OnShardLoaded(shard);
    }

    /// <summary>Creates the internal topic when it does not exist yet (through the active controller on a cluster).</summary>
    public async Task<ErrorCode> EnsureStartedAsync(CancellationToken cancellationToken)
    {
        if (_metadata.Image.Topic(_topic) is not null)
        {
            return ErrorCode.None;
        }

        await _startLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_metadata.Image.Topic(_topic) is null
                && await InternalTopics.CreateAsync(_creator, _topic, Shards.Length, _settings.SegmentBytes, _settings.ReplicationFactor, _settings.MinInsyncReplicas, cancellationToken).ConfigureAwait(false) is { } failure)
            {
                OnCreateFailed(failure);
                return ErrorCode.CoordinatorNotAvailable;
            }

            return ErrorCode.None;
        }
        finally
        {
            _startLock.Release();
        }
    }

    /// <summary>
    /// The shard of a key, ready to use, or the error to answer with (<paramref name="emptyKey"/> for an empty key):
    /// COORDINATOR_LOAD_IN_PROGRESS while this broker loads it, NOT_COORDINATOR when another broker leads it.
    /// </summary>
    protected async Task<(TShard? Shard, ErrorCode Error)> ShardForAsync(string? key, ErrorCode emptyKey, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(key))
        {
            return (null, emptyKey);
        }

        var started = await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return started != ErrorCode.None ? (null, started) : ShardAt(PartitionFor(key));
    }

    /// <summary>The loaded shard of partition <paramref name="index"/>, or why there is none here.</summary>
    protected (TShard? Shard, ErrorCode Error) ShardAt(int index)
    {
        if (index < 0 || index >= Shards.Length)
        {
            return (null, ErrorCode.NotCoordinator);
        }

        var shard = Shards[index];
        return shard.Loaded ? (shard, ErrorCode.None) : (null, LeaderEpochHere(index) >= 0 ? ErrorCode.CoordinatorLoadInProgress : ErrorCode.NotCoordinator);
    }

    /// <summary>
    /// Appends a batch to the shard's partition as its leader at the epoch the shard was loaded in, and waits until it
    /// is on disk and every in-sync replica has it. Failures are <see cref="KafkaProtocolException"/>s with the error a
    /// coordinator answers, as Kafka maps them: NOT_COORDINATOR when this broker no longer leads the partition at that
    /// epoch, COORDINATOR_NOT_AVAILABLE when the in-sync replicas are too few or do not confirm in time
    /// (offsets.commit.timeout.ms). The records stay in the log either way; a new leader decides whether they last.
    /// </summary>
    protected async Task<AppendResult> AppendAsync(TShard shard, ReadOnlyMemory<byte> batch, AppendOrigin origin)
    {
        ArgumentNullException.ThrowIfNull(shard);
        if (shard.Replica is not { } replica || !shard.Loaded)
        {
            throw new KafkaProtocolException(ErrorCode.NotCoordinator, $"{_topic}-{shard.Partition} is not coordinated by this broker.");
        }

        var (written, replicated) = await _services.AppendAsLeaderAsync(replica, batch, origin, shard.LeaderEpoch, TimeSpan.FromMilliseconds(_settings.WriteTimeoutMs), Stop.Token).ConfigureAwait(false);
        if (replicated != ErrorCode.None)
        {
            throw new KafkaProtocolException(
                replicated == ErrorCode.NotLeaderOrFollower ? ErrorCode.NotCoordinator : ErrorCode.CoordinatorNotAvailable,
                written is { } w
                    ? $"{_topic}-{shard.Partition}: the in-sync replicas did not confirm offset {w.LastOffset} ({replicated.KafkaName()})."
                    : $"{_topic}-{shard.Partition}: this broker does not lead it at leader epoch {shard.LeaderEpoch}.");
        }

        return written!.Value;
    }

    /// <summary>Builds a shard's state from its partition (under its lock).</summary>
    protected abstract Task LoadAsync(TShard shard);

    /// <summary>The shard stops being served here (under its lock): timers stop, waiting requests are answered NOT_COORDINATOR.</summary>
    protected abstract Task UnloadAsync(TShard shard);

    /// <summary>A shard is loaded and served: work that follows a load (run it with <see cref="RunLockedAsync"/>).</summary>
    protected abstract void OnShardLoaded(TShard shard);

    protected abstract void OnCreateFailed(string message);

    /// <summary>Timer work failed (logged; the timer goes on).</summary>
    protected abstract void OnTimerFailed(Exception exception);

    /// <summary>Runs <paramref name="work"/> on every loaded shard in turn, each under its lock.</summary>
    protected async Task ForEachLoadedShardAsync(Func<TShard, Task> work)
    {
        foreach (var shard in Shards.Where(s => s.Loaded))
        {
            await RunLockedAsync(shard, () => work(shard)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs timer work under the shard's lock, if the shard is still loaded then. Nothing starts after the stop; a
    /// failure is reported to <see cref="OnTimerFailed"/> and does not stop later work.
    /// </summary>
    protected async Task RunLockedAsync(TShard shard, Func<Task> action)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(action);
        try
        {
            await shard.Lock.WaitAsync(Stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            if (shard.Loaded)
            {
                await action().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is KafkaStorageException or KafkaProtocolException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            OnTimerFailed(e);
        }
        finally
        {
            shard.Lock.Release();
        }
    }

    /// <summary>
    /// Stops: nothing new starts after the cancellation, work running under a shard's lock is waited for (by taking
    /// every lock), and so is a load.
    /// </summary>
    protected async Task StopShardsAsync()
    {
        await Stop.CancelAsync().ConfigureAwait(false);
        if (_periodic is not null)
        {
            await _periodic.DisposeAsync().ConfigureAwait(false);
        }

        await _following.ConfigureAwait(false);
        foreach (var shard in Shards)
        {
            await shard.Lock.WaitAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Topic}-{Partition}: no longer coordinated here (loaded at leader epoch {Epoch}, now {Now})")]
    private static partial void LogUnloaded(ILogger logger, string topic, int partition, int epoch, int now);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Topic}-{Partition}: loading at leader epoch {Epoch} failed; it is not served here until its leadership changes")]
    private static partial void LogLoadFailed(ILogger logger, string topic, int partition, int epoch, Exception exception);
}
