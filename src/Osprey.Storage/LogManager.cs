using System.Collections.Concurrent;
using System.Globalization;

namespace Osprey.Storage;

/// <summary>Broker-level storage settings (Kafka's log.* broker configs).</summary>
public sealed record LogManagerOptions
{
    /// <summary>log.retention.check.interval.ms.</summary>
    public long RetentionCheckIntervalMs { get; init; } = 300_000;

    /// <summary>log.flush.scheduler.interval.ms: how often flush.ms / flush.messages are checked.</summary>
    public long FlushCheckIntervalMs { get; init; } = 1_000;

    /// <summary>log.flush.offset.checkpoint.interval.ms.</summary>
    public long CheckpointIntervalMs { get; init; } = 60_000;

    /// <summary>producer.id.expiration.ms: producers idle this long are forgotten (checked with retention).</summary>
    public long ProducerIdExpirationMs { get; init; } = 86_400_000;

    /// <summary>Whether acks=all appends wait for fsync (Osprey's default: yes).</summary>
    public bool DurableAppends { get; init; } = true;

    /// <summary>osprey.group.commit.interval.us: the least time between the starts of two group-commit rounds.</summary>
    public TimeSpan GroupCommitInterval { get; init; }

    /// <summary>
    /// osprey.log.writeback.bytes: once a segment has gathered this many bytes that are not on disk, their write-out
    /// starts (see <see cref="LogWriteback"/>); 0 leaves it to the kernel.
    /// </summary>
    public long WritebackBytes { get; init; } = LogWriteback.DefaultThresholdBytes;

    /// <summary>
    /// osprey.log.open.segments.max: how many .log files of inactive segments may be open at once (active segments
    /// always are); null sizes it from the descriptor limit (<see cref="SegmentHandleCache.DefaultCapacity"/>).
    /// </summary>
    public int? OpenSegmentsMax { get; init; }

    /// <summary>The log cleaner's settings (log.cleaner.*).</summary>
    public LogCleanerOptions Cleaner { get; init; } = new();
}

/// <summary>
/// All partition logs under one data directory: opening them after a clean or unclean stop, the recovery-point
/// log-start-offset and cleaner-offset checkpoints, the clean-shutdown marker, group-commit flushing, the periodic
/// retention, flush and checkpoint work, and the log cleaner that compacts logs with cleanup.policy=compact.
/// </summary>
public sealed class LogManager : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Topic, int Partition), PartitionLog> _logs = new();
    private readonly Lock _checkpointLock = new();
    private readonly Lock _openLock = new();
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _background = [];
    private readonly bool _wasCleanShutdown;
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private readonly Dictionary<(string, int), long> _recoveryPoints;
    private readonly Dictionary<(string, int), long> _logStartOffsets;
    private readonly Dictionary<(string, int), long> _cleanerOffsets;
    private bool _closed;

    public LogManager(string dataDirectory, LogManagerOptions options, TimeProvider time, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        DataDirectory = Path.GetFullPath(dataDirectory);
        Options = options;
        _time = time;
        Directory.CreateDirectory(DataDirectory);
        var marker = Path.Combine(DataDirectory, Checkpoints.CleanShutdownFile);
        _wasCleanShutdown = File.Exists(marker);
        _recoveryPoints = Checkpoints.ReadOffsets(Path.Combine(DataDirectory, Checkpoints.RecoveryPointFile));
        _logStartOffsets = Checkpoints.ReadOffsets(Path.Combine(DataDirectory, Checkpoints.LogStartOffsetFile));
        _cleanerOffsets = Checkpoints.ReadOffsets(Path.Combine(DataDirectory, Checkpoints.CleanerOffsetFile));
        Flusher = new LogFlusher(minRoundInterval: options.GroupCommitInterval);
        Writeback = new LogWriteback(options.WritebackBytes);
        Handles = new SegmentHandleCache(options.OpenSegmentsMax ?? SegmentHandleCache.DefaultCapacity(NativeFileSystem.OpenFileLimit()));
        Cleaner = new LogCleaner(() => _logs.Values, time, options.Cleaner) { Cleaned = _ => WriteCleanerCheckpoint() };

        // From here on a crash is an unclean stop.
        File.Delete(marker);
    }

    public string DataDirectory { get; }

    public LogManagerOptions Options { get; }

    public LogFlusher Flusher { get; }

    /// <summary>Starts the write-out of data nobody fsyncs yet, a little at a time.</summary>
    public LogWriteback Writeback { get; }

    /// <summary>The open files of inactive segments, across every log of this directory.</summary>
    public SegmentHandleCache Handles { get; }

    /// <summary>Compacts the logs whose cleanup.policy has compact; runs in the background once started.</summary>
    public LogCleaner Cleaner { get; }

    /// <summary>True when the previous run ended with a clean shutdown.</summary>
    public bool WasCleanShutdown => _wasCleanShutdown;

    public IReadOnlyDictionary<(string Topic, int Partition), PartitionLog> Logs => _logs;

    /// <summary>Parses a partition directory name "topic-partition"; topic names may contain '-'.</summary>
    public static bool TryParseDirectoryName(string name, out string topic, out int partition)
    {
        var dash = name.LastIndexOf('-');
        topic = dash > 0 ? name[..dash] : "";
        partition = -1;
        return dash > 0 && int.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out partition);
    }

    /// <summary>Partitions that have a directory on disk.</summary>
    public IEnumerable<(string Topic, int Partition)> PartitionsOnDisk() =>
        Directory.GetDirectories(DataDirectory)
            .Select(Path.GetFileName)
            .Select(name => TryParseDirectoryName(name!, out var t, out var p) ? (t, p) : (null!, -1))
            .Where(x => x.Item2 >= 0);

    /// <summary>Opens every partition found on disk with the config <paramref name="configFor"/> gives it.</summary>
    public void LoadAll(Func<string, LogConfig> configFor)
    {
        foreach (var (topic, partition) in PartitionsOnDisk())
        {
            GetOrCreate(topic, partition, configFor(topic));
        }
    }

    public PartitionLog? Get(string topic, int partition) => _logs.GetValueOrDefault((topic, partition));

    /// <summary>
    /// The log of a partition, opened (with recovery if needed) or created on first use. Once the manager is closing
    /// no log is opened or created any more (<see cref="ObjectDisposedException"/>), so nothing writes to the data
    /// directory after the clean-shutdown marker.
    /// </summary>
    public PartitionLog GetOrCreate(string topic, int partition, LogConfig config)
    {
        if (_logs.TryGetValue((topic, partition), out var open))
        {
            return open;
        }

        // One opener at a time: a partition's files are never opened twice, and never after the close began.
        lock (_openLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_logs.TryGetValue((topic, partition), out open))
            {
                return open;
            }

            var directory = Path.Combine(DataDirectory, PartitionLog.DirectoryName(topic, partition));
            var existed = Directory.Exists(directory);
            var key = (topic, partition);
            var log = PartitionLog.Open(
                directory,
                topic,
                partition,
                config,
                _time,
                recoveryPoint: _recoveryPoints.GetValueOrDefault(key, 0),
                logStartOffset: _logStartOffsets.GetValueOrDefault(key, 0),
                cleanShutdown: _wasCleanShutdown || !existed,
                logger: _logger,
                handles: Handles);
            log.RestoreCleanerCheckpoint(_cleanerOffsets.GetValueOrDefault(key, 0));
            log.Writeback = Writeback;
            _logs[key] = log;
            return log;
        }
    }

    /// <summary>Appends and, when <paramref name="durable"/>, completes only once the batches are on disk.</summary>
    public async ValueTask<AppendResult> AppendAsync(PartitionLog log, ReadOnlyMemory<byte> records, bool durable, int leaderEpoch = -1, AppendOrigin origin = AppendOrigin.Client)
    {
        var result = log.Append(records.Span, origin, leaderEpoch);
        await WhenDurable(log, result, durable).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Completes once what <paramref name="appended"/> wrote is on disk (by the group-commit flusher), or at once
    /// when <paramref name="durable"/> is false or durable appends are turned off. Split from the append so that a
    /// caller can act between the two (the produce path wakes waiting fetches as soon as the records are in the log).
    /// </summary>
    public Task WhenDurable(PartitionLog log, AppendResult appended, bool durable) =>
        durable && Options.DurableAppends ? Flusher.FlushAsync(log, appended.LastOffset + 1) : Task.CompletedTask;

    /// <summary>Closes and deletes a partition's log and directory.</summary>
    public void Delete(string topic, int partition)
    {
        if (_logs.TryRemove((topic, partition), out var log))
        {
            Cleaner.Abort(log);
            log.Dispose();
            log.DeletePendingFiles(force: true);
        }

        var directory = Path.Combine(DataDirectory, PartitionLog.DirectoryName(topic, partition));
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// One retention pass over every log (it also forgets expired producers). Returns the number of segments
    /// deleted.
    /// </summary>
    public int RunRetention() => _logs.Values.Sum(log =>
    {
        log.RemoveExpiredProducers(Options.ProducerIdExpirationMs);
        return log.ApplyRetention();
    });

    /// <summary>Flushes logs whose flush.ms or flush.messages is due.</summary>
    public void RunFlushChecks()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var log in _logs.Values)
        {
            if (log.FlushDue(now))
            {
                log.Flush(log.LogEndOffset);
            }
        }
    }

    /// <summary>Writes the recovery-point and log-start-offset checkpoints.</summary>
    public void WriteCheckpoints()
    {
        lock (_checkpointLock)
        {
            var logs = _logs.ToArray();
            Checkpoints.WriteOffsets(Path.Combine(DataDirectory, Checkpoints.RecoveryPointFile), logs.Select(p => KeyValuePair.Create(p.Key, p.Value.RecoveryPoint)));
            Checkpoints.WriteOffsets(Path.Combine(DataDirectory, Checkpoints.LogStartOffsetFile), logs.Select(p => KeyValuePair.Create(p.Key, p.Value.LogStartOffset)));
            WriteCleanerCheckpointLocked(logs);
        }
    }

    /// <summary>Writes the cleaner-offset checkpoint: each compacted log's first dirty offset.</summary>
    public void WriteCleanerCheckpoint()
    {
        lock (_checkpointLock)
        {
            WriteCleanerCheckpointLocked(_logs.ToArray());
        }
    }

    private void WriteCleanerCheckpointLocked(KeyValuePair<(string Topic, int Partition), PartitionLog>[] logs) =>
        Checkpoints.WriteOffsets(
            Path.Combine(DataDirectory, Checkpoints.CleanerOffsetFile),
            logs.Where(p => p.Value.Config.Compact).Select(p => KeyValuePair.Create(p.Key, p.Value.CleanerCheckpoint)));

    /// <summary>
    /// Starts the periodic retention, flush and checkpoint work on <see cref="TimeProvider"/> timers, and the log
    /// cleaner (unless log.cleaner.enable is off).
    /// </summary>
    public void StartBackgroundTasks()
    {
        if (Options.Cleaner.Enabled)
        {
            _background.Add(Cleaner.RunAsync(_stop.Token));
        }

        _background.Add(EveryAsync(Options.RetentionCheckIntervalMs, () => RunRetention()));
        _background.Add(EveryAsync(Options.FlushCheckIntervalMs, RunFlushChecks));
        _background.Add(EveryAsync(Options.CheckpointIntervalMs, WriteCheckpoints));
    }

    private async Task EveryAsync(long intervalMs, Action work)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Max(1, intervalMs)), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    work();
                }
                catch (Exception e) when (e is KafkaStorageException or IOException)
                {
                    // The next tick tries again; the failing log reports its error to the requests that touch it.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// A clean shutdown: stops background work, waits for pending flushes, closes every log (flushing it), writes
    /// the checkpoints and finally the clean-shutdown marker.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_closed)
        {
            return;
        }

        lock (_openLock)
        {
            _closed = true;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_background).ConfigureAwait(false);
        await Flusher.DisposeAsync().ConfigureAwait(false);
        Writeback.Dispose();

        // Finish what can be finished: every log is closed even when one fails (a full disk, say), and the
        // clean-shutdown marker is written only when all of it succeeded, so that the next start scans whatever
        // could not be made durable. Acknowledged acks=all data was fsynced before its answer; nothing of it
        // depends on this close.
        var failures = new List<Exception>();
        foreach (var log in _logs.Values)
        {
            if (!log.Close(out var failure))
            {
                failures.Add(failure ?? new KafkaStorageException(Protocol.ErrorCode.KafkaStorageError, $"{log.Topic}-{log.Partition}: a failed append left bytes that could not be cut back."));
            }
        }

        try
        {
            WriteCheckpoints();
            foreach (var log in _logs.Values)
            {
                log.DeletePendingFiles(force: true);
            }

            if (failures.Count == 0)
            {
                Checkpoints.WriteAtomically(Path.Combine(DataDirectory, Checkpoints.CleanShutdownFile), []);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaStorageException)
        {
            failures.Add(e);
        }

        _stop.Dispose();
        CloseFailures = failures;
    }

    /// <summary>What could not be done when the logs were closed (empty after a clean close); the next start recovers.</summary>
    public IReadOnlyList<Exception> CloseFailures { get; private set; } = [];
}
