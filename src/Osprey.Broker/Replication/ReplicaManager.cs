using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Storage;

namespace Osprey.Broker.Replication;

/// <summary>
/// This broker's replicas (<see cref="Partition"/>s), kept in step with the metadata: a publisher that runs after the
/// one opening logs, so each replica's log exists when its role is applied. Requests find a partition here and learn
/// whether this broker leads it. High watermarks are checkpointed to <c>replication-offset-checkpoint</c> (Kafka's
/// file and format) every replica.high.watermark.checkpoint.interval.ms and at close, so a restarted replica does not
/// start from nothing.
/// </summary>
public sealed partial class ReplicaManager : IMetadataPublisher, IAsyncDisposable
{
    public const string HighWatermarkFile = "replication-offset-checkpoint";

    private readonly ConcurrentDictionary<(string Topic, int Partition), Partition> _partitions = new();
    private readonly LogManager _logs;
    private readonly BrokerOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<(string Topic, int Partition), long> _checkpointed;
    private readonly ITimer _checkpointTimer;
    private readonly Lock _checkpointLock = new();
    private bool _closed;

    public ReplicaManager(LogManager logs, BrokerOptions options, ILogger logger)
    {
        _logs = logs;
        _options = options;
        _logger = logger;
        _checkpointed = Checkpoints.ReadOffsets(CheckpointPath);
        var interval = TimeSpan.FromMilliseconds(options.Config.GetLong("replica.high.watermark.checkpoint.interval.ms"));
        _checkpointTimer = options.Time.CreateTimer(_ => CheckpointQuietly(), null, interval, interval);
    }

    private string CheckpointPath => Path.Combine(_logs.DataDirectory, HighWatermarkFile);

    /// <summary>The replica of a partition held here (null: none).</summary>
    public Partition? Get(string topic, int partition) => _partitions.GetValueOrDefault((topic, partition));

    public IEnumerable<Partition> Partitions => _partitions.Values;

    /// <summary>
    /// The partition this broker leads, for a request naming <paramref name="currentLeaderEpoch"/> (-1: none), or the
    /// error: UNKNOWN_TOPIC_OR_PARTITION when the metadata has no such partition, NOT_LEADER_OR_FOLLOWER when another
    /// broker leads it (or none does), FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH when the client's epoch is not the
    /// leader's.
    /// </summary>
    public (Partition? Partition, ErrorCode Error) Leader(TopicImage? topic, int partition, int currentLeaderEpoch = -1)
    {
        if (topic is null || !topic.Partitions.ContainsKey(partition))
        {
            return (null, ErrorCode.UnknownTopicOrPartition);
        }

        if (Get(topic.Name, partition) is not { } replica)
        {
            return (null, ErrorCode.NotLeaderOrFollower);
        }

        var error = replica.CheckLeader(currentLeaderEpoch);
        return error == ErrorCode.None ? (replica, error) : (null, error);
    }

    /// <summary>Takes the roles of every partition in <paramref name="image"/> (at start, once the logs are open).</summary>
    public void Load(ClusterImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        foreach (var topic in image.Topics.Values)
        {
            foreach (var (index, partition) in topic.Partitions)
            {
                Apply(topic, index, partition);
            }
        }
    }

    public ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delta);
        foreach (var topic in delta.DeletedTopics)
        {
            foreach (var index in topic.Partitions.Keys)
            {
                Remove(topic.Name, index);
            }
        }

        foreach (var change in delta.ChangedPartitions)
        {
            if (delta.After.Topic(change.TopicId) is { } topic)
            {
                Apply(topic, change.After.PartitionId, change.After);
            }
        }

        return ValueTask.CompletedTask;
    }

    private void Apply(TopicImage topic, int index, PartitionImage image)
    {
        if (!image.Replicas.Contains(_options.NodeId))
        {
            Remove(topic.Name, index);
            return;
        }

        if (_logs.Get(topic.Name, index) is not { } log)
        {
            return; // its log could not be opened; the storage error was reported there
        }

        var partition = _partitions.GetOrAdd(
            (topic.Name, index),
            key => new Partition(key.Topic, topic.TopicId, key.Partition, log, _options.NodeId, _checkpointed.GetValueOrDefault(key)));
        if (partition.Apply(image, _options.Time.GetUtcNow().ToUnixTimeMilliseconds()))
        {
            LogRole(_logger, topic.Name, index, partition.IsLeader ? "leads" : "follows " + image.Leader, image.LeaderEpoch, partition.HighWatermark);
        }
    }

    private void Remove(string topic, int index)
    {
        if (_partitions.TryRemove((topic, index), out var partition))
        {
            partition.Close();
        }
    }

    /// <summary>Writes every replica's high watermark to the checkpoint file.</summary>
    public void Checkpoint()
    {
        lock (_checkpointLock)
        {
            if (_closed)
            {
                return;
            }

            Checkpoints.WriteOffsets(CheckpointPath, _partitions.Select(p => KeyValuePair.Create(p.Key, p.Value.HighWatermark)).ToList());
        }
    }

    private void CheckpointQuietly()
    {
        try
        {
            Checkpoint();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogCheckpointFailed(_logger, CheckpointPath, e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _checkpointTimer.DisposeAsync().ConfigureAwait(false);
        CheckpointQuietly();
        lock (_checkpointLock)
        {
            _closed = true;
        }

        foreach (var partition in _partitions.Values)
        {
            partition.Close();
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Replica {Topic}-{Partition}: this broker {Role} at leader epoch {Epoch} (high watermark {HighWatermark})")]
    private static partial void LogRole(ILogger logger, string topic, int partition, string role, int epoch, long highWatermark);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write the high watermark checkpoint {Path}; it is tried again at the next interval")]
    private static partial void LogCheckpointFailed(ILogger logger, string path, Exception exception);
}
