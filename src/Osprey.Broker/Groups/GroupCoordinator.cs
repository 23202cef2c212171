using Microsoft.Extensions.Logging;
using Osprey.Broker.Config;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Groups;

/// <summary>The group coordinator's settings (Kafka's group.* and offsets.* broker settings).</summary>
public sealed record GroupCoordinatorOptions
{
    public int InitialRebalanceDelayMs { get; init; } = 3000;

    public int MinSessionTimeoutMs { get; init; } = 6000;

    public int MaxSessionTimeoutMs { get; init; } = 1_800_000;

    public int MaxGroupSize { get; init; } = int.MaxValue;

    public int Partitions { get; init; } = 50;

    public int SegmentBytes { get; init; } = 104_857_600;

    public short ReplicationFactor { get; init; } = 3;

    public int CommitTimeoutMs { get; init; } = 5000;

    public long OffsetsRetentionMs { get; init; } = 10080L * 60_000;

    public long RetentionCheckIntervalMs { get; init; } = 600_000;

    public int MaxMetadataBytes { get; init; } = 4096;

    public int ConsumerHeartbeatIntervalMs { get; init; } = 5000;

    public int ConsumerSessionTimeoutMs { get; init; } = 45_000;

    public int ConsumerMaxSize { get; init; } = int.MaxValue;

    /// <summary>The server assignors members may ask for; the first is the default.</summary>
    public IReadOnlyList<string> ConsumerAssignors { get; init; } = ["uniform", "range"];

    /// <summary>__consumer_offsets as Kafka makes it: no min.insync.replicas of its own; writes wait offsets.commit.timeout.ms.</summary>
    public InternalTopicSettings TopicSettings => new(Partitions, SegmentBytes, ReplicationFactor, MinInsyncReplicas: null, CommitTimeoutMs);

    public static GroupCoordinatorOptions From(BrokerConfig config) => new()
    {
        InitialRebalanceDelayMs = config.GetInt("group.initial.rebalance.delay.ms"),
        MinSessionTimeoutMs = config.GetInt("group.min.session.timeout.ms"),
        MaxSessionTimeoutMs = config.GetInt("group.max.session.timeout.ms"),
        MaxGroupSize = config.GetInt("group.max.size"),
        Partitions = config.GetInt("offsets.topic.num.partitions"),
        SegmentBytes = config.GetInt("offsets.topic.segment.bytes"),
        ReplicationFactor = (short)config.GetInt("offsets.topic.replication.factor"),
        CommitTimeoutMs = config.GetInt("offsets.commit.timeout.ms"),
        OffsetsRetentionMs = config.GetInt("offsets.retention.minutes") * 60_000L,
        RetentionCheckIntervalMs = config.GetLong("offsets.retention.check.interval.ms"),
        MaxMetadataBytes = config.GetInt("offset.metadata.max.bytes"),
        ConsumerHeartbeatIntervalMs = config.GetInt("group.consumer.heartbeat.interval.ms"),
        ConsumerSessionTimeoutMs = config.GetInt("group.consumer.session.timeout.ms"),
        ConsumerMaxSize = config.GetInt("group.consumer.max.size"),
        ConsumerAssignors = config.Get("group.consumer.assignors")!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
    };
}

/// <summary>
/// The state of one __consumer_offsets partition: the groups that hash to it and their committed offsets. All
/// changes happen under <see cref="Lock"/>; a change is written to the partition's log (fsynced, and held by every
/// in-sync replica) before it is answered. A shard lives on the leader of its partition.
/// </summary>
public sealed class CoordinatorShard(int partition) : InternalTopicShard(partition)
{
    public Dictionary<string, ClassicGroup> Groups { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, ConsumerGroup> ConsumerGroups { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, Dictionary<(string Topic, int Partition), CommittedOffset>> Offsets { get; } = new(StringComparer.Ordinal);

    /// <summary>Offsets committed inside open transactions, by producer id: applied at COMMIT, dropped at ABORT.</summary>
    public Dictionary<long, Dictionary<(string Group, string Topic, int Partition), CommittedOffset?>> PendingTxnOffsets { get; } = [];

    public Dictionary<(string Group, string Topic, int Partition), CommittedOffset?> PendingOf(long producerId)
    {
        if (!PendingTxnOffsets.TryGetValue(producerId, out var pending))
        {
            pending = [];
            PendingTxnOffsets[producerId] = pending;
        }

        return pending;
    }

    public bool HasPendingOffsets(string group) => PendingTxnOffsets.Values.Any(p => p.Keys.Any(k => k.Group == group));

    public Dictionary<(string Topic, int Partition), CommittedOffset> OffsetsOf(string group)
    {
        if (!Offsets.TryGetValue(group, out var offsets))
        {
            offsets = [];
            Offsets[group] = offsets;
        }

        return offsets;
    }
}

/// <summary>
/// The group coordinator: consumer groups' membership (the classic JoinGroup/SyncGroup protocol) and committed
/// offsets, kept as records in the compacted internal topic __consumer_offsets. A group lives in the shard of
/// partition abs(hash(group id)) % offsets.topic.num.partitions, as in Kafka, and is served by that partition's
/// leader. The topic is created on first use; a shard that is still loading answers COORDINATOR_LOAD_IN_PROGRESS.
/// </summary>
public sealed partial class GroupCoordinator : InternalTopicCoordinator<CoordinatorShard>, IAsyncDisposable
{
    public const string TopicName = "__consumer_offsets";

    private readonly IMetadataQuorum _metadata;
    private readonly TimeProvider _time;
    private readonly ILogger<GroupCoordinator> _logger;

    public GroupCoordinator(InternalTopicServices services, ILogger<GroupCoordinator> logger)
        : base(TopicName, services, GroupCoordinatorOptions.From(services.Options.Config).TopicSettings, p => new CoordinatorShard(p), logger)
    {
        _metadata = services.Metadata;
        _time = services.Options.Time;
        _logger = logger;
        Options = GroupCoordinatorOptions.From(services.Options.Config);
        StartFollowingLeadership(Options.RetentionCheckIntervalMs, ExpireOffsetsAsync);
    }

    /// <summary>A deleted topic's committed offsets go with it (a topic created again under the name starts with none).</summary>
    public override async ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
    {
        await base.PublishAsync(delta, cancellationToken).ConfigureAwait(false);
        if (!delta.DeletedTopics.IsEmpty)
        {
            await RemoveOffsetsOfDeletedTopicsAsync([.. delta.DeletedTopics.Select(t => t.Name)]).ConfigureAwait(false);
        }
    }

    public GroupCoordinatorOptions Options { get; }

    internal long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The shard of a group, ready to use, or the error to answer with.</summary>
    internal Task<(CoordinatorShard? Shard, ErrorCode Error)> ShardAsync(string? groupId, CancellationToken cancellationToken) =>
        ShardForAsync(groupId, ErrorCode.InvalidGroupId, cancellationToken);

    /// <summary>Every loaded shard (for listing groups).</summary>
    internal IEnumerable<CoordinatorShard> LoadedShards => Shards.Where(s => s.Loaded);


    protected override Task LoadAsync(CoordinatorShard shard)
    {
        Load(shard);
        return Task.CompletedTask;
    }

    /// <summary>Offsets of topics deleted while the shard was not served here, or before their removal was written, go.</summary>
    protected override void OnShardLoaded(CoordinatorShard shard) =>
        _ = RunLockedAsync(shard, () => RemoveOffsetsAsync(shard, topic => _metadata.Image.Topic(topic) is null));

    /// <summary>Another broker serves the shard now: its timers stop, and requests waiting on it are told to find the coordinator again.</summary>
    protected override Task UnloadAsync(CoordinatorShard shard)
    {
        StopMembers(shard, member =>
        {
            member.PendingJoin?.TrySetResult(JoinError(ErrorCode.NotCoordinator, member.MemberId));
            member.PendingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.NotCoordinator, Assignment = [] });
        });
        return Task.CompletedTask;
    }

    protected override void OnTimerFailed(Exception exception) => LogTimerFailed(_logger, exception);

    protected override void OnCreateFailed(string message) => LogCreateFailed(_logger, message);

    /// <summary>Replays a partition's records into its shard.</summary>
    private void Load(CoordinatorShard shard)
    {
        InternalTopics.Replay(shard.Log!, (batch, record) =>
        {
            GroupRecords.Parsed? parsed;
            try
            {
                parsed = GroupRecords.Parse(record.Key, record.Value, record.IsValueNull);
            }
            catch (KafkaProtocolException e)
            {
                // One unreadable record must not keep the whole partition's groups from loading.
                LogSkippedRecord(_logger, shard.Partition, batch.BaseOffset, e.Message);
                return;
            }

            if (batch.IsTransactional && batch.ProducerId >= 0 && parsed is GroupRecords.Offset offset)
            {
                // A transactional offset commit: pending until the transaction's marker says what became of it.
                shard.PendingOf(batch.ProducerId)[(offset.Group, offset.Topic, offset.Partition)] = offset.Value;
                return;
            }

            Apply(shard, parsed);
        }, (batch, control) =>
        {
            if (ControlMarker(control) is { } commit)
            {
                CompletePending(shard, batch.ProducerId, commit);
            }
        }, (batch, why) => LogSkippedRecord(_logger, shard.Partition, batch.BaseOffset, why));

        var now = NowMs;
        foreach (var group in shard.Groups.Values.Where(g => g.Members.Count > 0))
        {
            foreach (var member in group.Members.Values)
            {
                ScheduleSession(shard, group, member);
            }
        }

        foreach (var group in shard.ConsumerGroups.Values)
        {
            Resolve(group);
            foreach (var member in group.Members.Values)
            {
                ScheduleConsumerSession(shard, group, member);
                ScheduleRevocation(shard, group, member);
            }
        }

        LogLoaded(_logger, shard.Partition, shard.Groups.Count + shard.ConsumerGroups.Count, shard.Offsets.Sum(o => o.Value.Count), NowMs - now);
    }

    private void Apply(CoordinatorShard shard, GroupRecords.Parsed? parsed)
    {
        switch (parsed)
        {
            case GroupRecords.Offset { Value: null } o:
                if (shard.Offsets.TryGetValue(o.Group, out var offsets))
                {
                    offsets.Remove((o.Topic, o.Partition));
                }

                break;
            case GroupRecords.Offset o:
                shard.OffsetsOf(o.Group)[(o.Topic, o.Partition)] = o.Value;
                break;
            case GroupRecords.Group { Value: null } g:
                shard.Groups.Remove(g.GroupId);
                break;
            case GroupRecords.Group g:
                var value = g.Value;
                var group = new ClassicGroup(g.GroupId, value.CurrentStateTimestamp < 0 ? NowMs : value.CurrentStateTimestamp)
                {
                    Generation = value.Generation,
                    ProtocolType = value.ProtocolType.Length == 0 ? null : value.ProtocolType,
                    ProtocolName = value.Protocol,
                    LeaderId = value.Leader,
                };
                foreach (var m in value.Members)
                {
                    group.Members[m.MemberId] = new ClassicMember(m.MemberId)
                    {
                        GroupInstanceId = m.GroupInstanceId,
                        ClientId = m.ClientId,
                        ClientHost = m.ClientHost,
                        RebalanceTimeoutMs = m.RebalanceTimeout,
                        SessionTimeoutMs = m.SessionTimeout,
                        ProtocolType = value.ProtocolType,
                        Protocols = [(value.Protocol ?? "", m.Subscription)],
                        Assignment = m.Assignment,
                    };
                    if (m.GroupInstanceId is { } instance)
                    {
                        group.StaticMembers[instance] = m.MemberId;
                    }
                }

                group.TransitionTo(group.Members.Count > 0 ? GroupState.Stable : GroupState.Empty, group.StateTimestamp);
                shard.Groups[g.GroupId] = group;
                break;
            default:
                ApplyConsumerGroupRecord(shard, parsed);
                break;
        }
    }

    /// <summary>
    /// Writes records to the shard's partition and waits until they are on disk; as one transactional batch of
    /// the producer when <paramref name="transactional"/> is given (TxnOffsetCommit).
    /// </summary>
    internal async Task WriteAsync(CoordinatorShard shard, IReadOnlyList<(byte[] Key, byte[]? Value)> records, (long ProducerId, short Epoch)? transactional = null)
    {
        if (records.Count == 0)
        {
            return;
        }

        using var builder = new RecordBatchBuilder();
        if (transactional is { } producer)
        {
            (builder.ProducerId, builder.ProducerEpoch, builder.IsTransactional) = (producer.ProducerId, producer.Epoch, true);
        }

        var now = NowMs;
        foreach (var (key, value) in records)
        {
            builder.Append(now, key, value);
        }

        await AppendAsync(shard, builder.Build(), transactional is null ? AppendOrigin.Client : AppendOrigin.Coordinator).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="action"/> under the shard's lock (for timers).</summary>
    internal ITimer Schedule(CoordinatorShard shard, int delayMs, Func<Task> action) =>
        _time.CreateTimer(
            _ => _ = RunLockedAsync(shard, action),
            null,
            TimeSpan.FromMilliseconds(Math.Max(0, delayMs)),
            Timeout.InfiniteTimeSpan);

    public async ValueTask DisposeAsync()
    {
        // Timer work (session expiry, rebalance completion, offsets expiry) runs under a shard's lock: stopping
        // waits for what is running, and nothing new starts after the cancellation.
        await StopShardsAsync().ConfigureAwait(false);
        foreach (var shard in Shards)
        {
            StopMembers(shard, member =>
            {
                member.PendingJoin?.TrySetCanceled();
                member.PendingSync?.TrySetCanceled();
            });
        }
    }

    /// <summary>Stops the shard's timers (rebalances, sessions, revocations) and ends its members' waiting requests with <paramref name="endWaits"/>.</summary>
    private static void StopMembers(CoordinatorShard shard, Action<ClassicMember> endWaits)
    {
        foreach (var group in shard.Groups.Values)
        {
            group.RebalanceTimer?.Dispose();
            foreach (var member in group.Members.Values)
            {
                member.SessionTimer?.Dispose();
                endWaits(member);
            }
        }

        foreach (var group in shard.ConsumerGroups.Values)
        {
            foreach (var member in group.Members.Values)
            {
                member.StopTimers();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded __consumer_offsets-{Partition}: {Groups} groups, {Offsets} offsets in {Ms} ms")]
    private static partial void LogLoaded(ILogger logger, int partition, int groups, int offsets, long ms);

    [LoggerMessage(Level = LogLevel.Information, Message = "Group {GroupId} is rebalancing (generation {Generation}, {Members} members)")]
    private static partial void LogRebalancing(ILogger logger, string groupId, int generation, int members);

    [LoggerMessage(Level = LogLevel.Information, Message = "Group {GroupId} generation {Generation}: {Members} members, protocol {Protocol}")]
    private static partial void LogGeneration(ILogger logger, string groupId, int generation, int members, string protocol);

    [LoggerMessage(Level = LogLevel.Information, Message = "Consumer group {GroupId} epoch {Epoch}: new target assignment for {Members} members ({Assignor} assignor)")]
    private static partial void LogTargetAssignment(ILogger logger, string groupId, int epoch, int members, string assignor);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Count} committed offsets of deleted topics from __consumer_offsets-{Partition}")]
    private static partial void LogOffsetsOfDeletedTopicsRemoved(ILogger logger, int count, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped an unreadable record in __consumer_offsets-{Partition} (batch at offset {Offset}): {Reason}")]
    private static partial void LogSkippedRecord(ILogger logger, int partition, long offset, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot create __consumer_offsets: {Message}")]
    private static partial void LogCreateFailed(ILogger logger, string? message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A group coordinator timer failed")]
    private static partial void LogTimerFailed(ILogger logger, Exception exception);
}
