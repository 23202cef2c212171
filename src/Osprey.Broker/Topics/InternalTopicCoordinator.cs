using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>One partition of a coordinator's internal topic, and the state built from it. Changed under <see cref="Lock"/>.</summary>
public abstract class InternalTopicShard(int partition)
{
    public int Partition { get; } = partition;

    public SemaphoreSlim Lock { get; } = new(1, 1);

    public volatile bool Loaded;

    public PartitionLog? Log { get; set; }
}

/// <summary>
/// What the group and transaction coordinators share: their state lives in a compacted internal topic, one shard
/// per partition; a key (group id, transactional id) belongs to partition abs(Java String.hashCode) % partitions,
/// as in Kafka. The topic is created on first use (or found at start) and its partitions loaded in the
/// background; a shard that is still loading answers COORDINATOR_LOAD_IN_PROGRESS. When clustering comes, a
/// shard lives with the leader of its partition.
/// </summary>
public abstract class InternalTopicCoordinator<TShard>
    where TShard : InternalTopicShard
{
    private readonly string _topic;
    private readonly IMetadataQuorum _metadata;
    private readonly LogManager _logs;
    private readonly TopicCreator _creator;
    private readonly int _segmentBytes;
    private readonly SemaphoreSlim _startLock = new(1, 1);
    private ITimer? _periodic;

    protected InternalTopicCoordinator(string topic, IMetadataQuorum metadata, LogManager logs, TopicCreator creator, int partitions, int segmentBytes, Func<int, TShard> newShard)
    {
        _topic = topic;
        _metadata = metadata;
        _logs = logs;
        _creator = creator;
        _segmentBytes = segmentBytes;
        Shards = [.. Enumerable.Range(0, metadata.Image.Topic(topic)?.Partitions.Count ?? partitions).Select(newShard)];
    }

    protected TShard[] Shards { get; }

    protected CancellationTokenSource Stop { get; } = new();

    /// <summary>The background load of every shard; null until the topic exists.</summary>
    protected Task? Loading { get; private set; }

    internal bool AllLoaded => Loading is not null && Shards.All(s => s.Loaded);

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

    /// <summary>Starts loading at construction when the topic already exists (call at the end of the derived constructor).</summary>
    protected void LoadIfPresent()
    {
        if (_metadata.Image.Topic(_topic) is not null)
        {
            Loading = LoadAllAsync();
        }
    }

    /// <summary>Creates the internal topic when it does not exist yet, and starts loading it.</summary>
    public async Task<ErrorCode> EnsureStartedAsync(CancellationToken cancellationToken)
    {
        if (Loading is not null)
        {
            return ErrorCode.None;
        }

        await _startLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Loading is not null)
            {
                return ErrorCode.None;
            }

            if (_metadata.Image.Topic(_topic) is null
                && await InternalTopics.CreateAsync(_creator, _topic, Shards.Length, _segmentBytes, cancellationToken).ConfigureAwait(false) is { } failure)
            {
                OnCreateFailed(failure);
                return ErrorCode.CoordinatorNotAvailable;
            }

            Loading = LoadAllAsync();
            return ErrorCode.None;
        }
        finally
        {
            _startLock.Release();
        }
    }

    /// <summary>The shard of a key, ready to use, or the error to answer with (<paramref name="emptyKey"/> for an empty key).</summary>
    protected async Task<(TShard? Shard, ErrorCode Error)> ShardForAsync(string? key, ErrorCode emptyKey, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(key))
        {
            return (null, emptyKey);
        }

        var started = await EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        if (started != ErrorCode.None)
        {
            return (null, started);
        }

        var shard = Shards[PartitionFor(key)];
        return shard.Loaded ? (shard, ErrorCode.None) : (null, ErrorCode.CoordinatorLoadInProgress);
    }

    private async Task LoadAllAsync()
    {
        await Task.Yield();
        foreach (var shard in Shards)
        {
            await shard.Lock.WaitAsync(Stop.Token).ConfigureAwait(false);
            try
            {
                // On a cluster a partition whose replicas are elsewhere has no log here; coordinators following
                // partition leadership are still to come, so such a shard stays unloaded.
                if (_logs.Get(_topic, shard.Partition) is not { } log)
                {
                    continue;
                }

                shard.Log = log;
                await LoadAsync(shard).ConfigureAwait(false);
                shard.Loaded = true;
            }
            finally
            {
                shard.Lock.Release();
            }
        }

        OnLoaded();
    }

    /// <summary>Builds a shard's state from its partition (under its lock).</summary>
    protected abstract Task LoadAsync(TShard shard);

    /// <summary>Every shard is loaded: start the periodic work.</summary>
    protected abstract void OnLoaded();

    protected abstract void OnCreateFailed(string message);

    /// <summary>Timer work failed (logged; the timer goes on).</summary>
    protected abstract void OnTimerFailed(Exception exception);

    /// <summary>Runs <paramref name="work"/> on every loaded shard, each under its lock, every <paramref name="intervalMs"/> (until the stop).</summary>
    protected void StartPeriodic(TimeProvider time, long intervalMs, Func<TShard, Task> work)
    {
        var interval = TimeSpan.FromMilliseconds(intervalMs);
        _periodic = time.CreateTimer(_ => _ = ForEachLoadedShardAsync(work), null, interval, interval);
    }

    /// <summary>Runs <paramref name="work"/> on every loaded shard in turn, each under its lock.</summary>
    protected async Task ForEachLoadedShardAsync(Func<TShard, Task> work)
    {
        foreach (var shard in Shards.Where(s => s.Loaded))
        {
            await RunLockedAsync(shard, () => work(shard)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs timer work under the shard's lock. Nothing starts after the stop; a failure is reported to
    /// <see cref="OnTimerFailed"/> and does not stop later work.
    /// </summary>
    protected async Task RunLockedAsync(TShard shard, Func<Task> action)
    {
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
            await action().ConfigureAwait(false);
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
    /// every lock), and so is the load.
    /// </summary>
    protected async Task StopShardsAsync()
    {
        await Stop.CancelAsync().ConfigureAwait(false);
        if (_periodic is not null)
        {
            await _periodic.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var shard in Shards)
        {
            await shard.Lock.WaitAsync().ConfigureAwait(false);
        }

        if (Loading is not null)
        {
            try
            {
                await Loading.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
