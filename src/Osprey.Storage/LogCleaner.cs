using System.Runtime.CompilerServices;

namespace Osprey.Storage;

/// <summary>Broker-level cleaner settings, named and defaulted as Kafka's log.cleaner.* configs.</summary>
public sealed record LogCleanerOptions
{
    /// <summary>log.cleaner.enable: whether <see cref="LogManager.StartBackgroundTasks"/> starts the cleaner.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>log.cleaner.backoff.ms: how long the cleaner sleeps when no log needs cleaning.</summary>
    public long BackoffMs { get; init; } = 15_000;

    /// <summary>
    /// log.cleaner.dedupe.buffer.size: bounds the key → offset map of one cleaning, counted as Kafka does at 24
    /// bytes an entry (a 16-byte key hash and an offset). A cleaning maps whole segments and stops at the first
    /// segment boundary past the bound (the first dirty segment is always mapped); the rest waits for the next
    /// cleaning.
    /// </summary>
    public long DedupeBufferSize { get; init; } = 128L * 1024 * 1024;

    /// <summary>log.cleaner.io.buffer.load.factor: the share of the dedupe buffer the map may fill.</summary>
    public double DedupeBufferLoadFactor { get; init; } = 0.9;

    /// <summary>How many keys one cleaning maps before it stops at a segment boundary.</summary>
    public long MaxMapEntries => Math.Max(1, (long)(DedupeBufferSize / 24 * DedupeBufferLoadFactor));
}

/// <summary>
/// A compacted log as the cleaner sees it. The cleanable range runs from the first segment to
/// <see cref="FirstUncleanableOffset"/> (the active segment's base offset, or the base of the first segment
/// held back by min.compaction.lag.ms or by the cleanable limit); its clean part ends at the segment holding
/// <see cref="FirstDirtyOffset"/> (the cleaner checkpoint), the rest is dirty.
/// </summary>
public sealed record CleanableLog(
    PartitionLog Log,
    long FirstDirtyOffset,
    long FirstUncleanableOffset,
    long CleanBytes,
    long DirtyBytes,
    long MaxCompactionDelayMs)
{
    /// <summary>Dirty bytes over all bytes of the cleanable range, what min.cleanable.dirty.ratio is compared with.</summary>
    public double DirtyRatio => CleanBytes + DirtyBytes == 0 ? 0 : DirtyBytes / (double)(CleanBytes + DirtyBytes);

    /// <summary>max.compaction.lag.ms has passed for its oldest dirty record: clean it whatever the ratio (KIP-354).</summary>
    public bool MustCleanNow => MaxCompactionDelayMs > 0 && DirtyBytes > 0;

    /// <summary>Whether the cleaner would pick this log: dirty enough (ratio above min.cleanable.dirty.ratio) or due.</summary>
    public bool IsCleanable => DirtyBytes > 0 && (MustCleanNow || DirtyRatio > Log.Config.MinCleanableDirtyRatio);
}

/// <summary>What one cleaning did.</summary>
public sealed record CleanResult(
    PartitionLog Log,
    long FirstDirtyOffset,
    long EndOffset,
    int SegmentsReplaced,
    int SegmentsWritten,
    long BytesRead,
    long BytesWritten,
    long RecordsRead,
    long RecordsRetained,
    bool Completed)
{
    /// <summary>Whether the checkpoint moved or segments were rewritten (a log held back by an open transaction makes none).</summary>
    public bool MadeProgress => EndOffset > FirstDirtyOffset || SegmentsReplaced > 0;
}

/// <summary>
/// Log compaction (cleanup.policy=compact, Kafka's semantics): keeps, for every key, at least the record with
/// its greatest offset, removing older records of the same key from the closed segments. Offsets never change,
/// so compacted segments have gaps. One pass (<see cref="RunOnce"/>) picks the compacted log that most needs
/// cleaning and cleans it; <see cref="RunAsync"/> repeats passes, sleeping log.cleaner.backoff.ms when there is
/// nothing to clean.
/// <list type="bullet">
/// <item>Picking: logs past max.compaction.lag.ms first (the longest overdue first), then the dirtiest log whose
/// dirty ratio is above min.cleanable.dirty.ratio.</item>
/// <item>Cleaning: a key → latest offset map over the dirty segments of the cleanable range, then every segment of
/// the range, clean ones included, is rewritten keeping the records no later record of the same key replaces.
/// Records without a key are dropped (Kafka refuses them on compacted topics; they can only come from a topic
/// that was not compacted before). A tombstone (null value) stays until its batch's delete horizon: the first
/// cleaning that keeps it stamps the batch with now + delete.retention.ms (KIP-534), and a cleaning after that
/// time removes it.</item>
/// <item>Transactions: a marker stays while any batch of its transaction is in the log; once none is, it is stamped
/// with a delete horizon and removed by a pass after it (with its .txnindex entry), as Kafka does. The cleaned
/// segment keeps the aborted-transaction entries of the markers it keeps. Data of aborted transactions is removed and never
/// enters the map; committed transactional data is compacted as usual. A transaction with no marker yet stops
/// the cleanable range at the segment holding its first batch, as Kafka's last stable offset does.</item>
/// <item>Producers: a batch whose records are all removed is dropped, unless it is the last data batch of its
/// producer id in the log: that one stays as an empty batch (no records, same offsets, producer id, epoch and
/// base sequence) so the producer's last sequence survives, as Kafka keeps it. Every producer id counts as
/// active (there is no producer expiry here).</item>
/// <item>Output: consecutive segments are grouped so each group fits segment.bytes, the index size and int32 offset
/// deltas; each group becomes one ".cleaned" segment, committed by a rename to ".swap" next to a ".covers" marker and
/// swapped in by <see cref="PartitionLog.ReplaceSegments"/>. Readers keep the old segments until
/// file.delete.delay.ms.</item>
/// </list>
/// </summary>
public sealed partial class LogCleaner
{
    private readonly Func<IEnumerable<PartitionLog>> _logs;
    private readonly TimeProvider _time;
    private readonly Lock _stateLock = new();
    private readonly SemaphoreSlim _pass = new(1, 1);
    private readonly ManualResetEventSlim _notCleaning = new(initialState: true);
    private readonly ConditionalWeakTable<PartitionLog, object> _aborted = [];
    private readonly ConditionalWeakTable<PartitionLog, Exception> _uncleanable = [];
    private PartitionLog? _current;
    private CancellationTokenSource? _currentCancel;

    /// <param name="logs">The logs to consider on every pass (those without compact in cleanup.policy are skipped).</param>
    public LogCleaner(Func<IEnumerable<PartitionLog>> logs, TimeProvider time, LogCleanerOptions? options = null)
    {
        _logs = logs;
        _time = time;
        Options = options ?? new LogCleanerOptions();
    }

    public LogCleanerOptions Options { get; }

    /// <summary>
    /// The offset nothing at or above is cleaned in a log (the high watermark, or the last stable offset with
    /// transactions), when something tracks it; null cleans up to the active segment.
    /// </summary>
    public Func<PartitionLog, long>? CleanableLimit { get; init; }

    /// <summary>Called after a cleaning advanced a log's cleaner checkpoint (the log manager writes it to disk).</summary>
    public Action<PartitionLog>? Cleaned { get; init; }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The compacted logs as the cleaner sees them now, cleanable or not.</summary>
    public IReadOnlyList<CleanableLog> Inspect()
    {
        var now = NowMs;
        var result = new List<CleanableLog>();
        foreach (var log in _logs())
        {
            if (Inspect(log, now) is { } state)
            {
                result.Add(state);
            }
        }

        return result;
    }

    /// <summary>
    /// One pass: cleans the log that most needs it (see the class remarks), if any. Returns what it did, or null
    /// when no log needs cleaning.
    /// </summary>
    public CleanResult? RunOnce(CancellationToken cancellationToken = default)
    {
        _pass.Wait(cancellationToken);
        try
        {
            var now = NowMs;
            CleanableLog? best = null;
            foreach (var log in _logs())
            {
                if (IsExcluded(log) || Inspect(log, now) is not { IsCleanable: true } state)
                {
                    continue;
                }

                if (best is null || Compare(state, best) > 0)
                {
                    best = state;
                }
            }

            return best is null ? null : CleanLocked(best.Log, cancellationToken);
        }
        finally
        {
            _pass.Release();
        }
    }

    /// <summary>
    /// Cleans <paramref name="log"/> now, however dirty it is (the active segment, and what min.compaction.lag.ms
    /// holds back, are still left alone). The log's cleanup.policy must have compact.
    /// </summary>
    public CleanResult Clean(PartitionLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (!log.Config.Compact)
        {
            throw new InvalidOperationException($"{log.Topic}-{log.Partition}: cleanup.policy has no compact; the cleaner does not touch it.");
        }

        _pass.Wait(cancellationToken);
        try
        {
            return CleanLocked(log, cancellationToken);
        }
        finally
        {
            _pass.Release();
        }
    }

    /// <summary>
    /// Stops cleaning <paramref name="log"/> for good (it is being deleted or closed): a cleaning of it in progress
    /// is abandoned, leaving the log as it was, and this returns once that has stopped.
    /// </summary>
    public void Abort(PartitionLog log)
    {
        while (true)
        {
            lock (_stateLock)
            {
                _aborted.AddOrUpdate(log, log);
                if (!ReferenceEquals(_current, log))
                {
                    return;
                }

                _currentCancel?.Cancel();
            }

            _notCleaning.Wait();
        }
    }

    /// <summary>Why a log is no longer cleaned (its cleaning failed), or null.</summary>
    public Exception? UncleanableReason(PartitionLog log) => _uncleanable.TryGetValue(log, out var e) ? e : null;

    /// <summary>Runs passes until cancelled, sleeping log.cleaner.backoff.ms on <see cref="TimeProvider"/> when idle.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => Task.Run(
        async () =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                CleanResult? result;
                try
                {
                    result = RunOnce(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The log is now skipped as uncleanable (see UncleanableReason); back off before the next pass.
                    result = null;
                }

                if (result is not { MadeProgress: true })
                {
                    try
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(1, Options.BackoffMs)), _time, cancellationToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }
        },
        CancellationToken.None);

    /// <summary>Overdue logs first (the most overdue first), then the dirtiest.</summary>
    private static int Compare(CleanableLog a, CleanableLog b)
    {
        if (a.MustCleanNow != b.MustCleanNow)
        {
            return a.MustCleanNow ? 1 : -1;
        }

        if (a.MustCleanNow && a.MaxCompactionDelayMs != b.MaxCompactionDelayMs)
        {
            return a.MaxCompactionDelayMs.CompareTo(b.MaxCompactionDelayMs);
        }

        return a.DirtyRatio.CompareTo(b.DirtyRatio);
    }

    private bool IsExcluded(PartitionLog log)
    {
        lock (_stateLock)
        {
            return _aborted.TryGetValue(log, out _) || _uncleanable.TryGetValue(log, out _);
        }
    }

    /// <summary>The log's cleanable range now, or null when it is not compacted or closed.</summary>
    private CleanableLog? Inspect(PartitionLog log, long now)
    {
        if (!log.Config.Compact || log.IsDisposed)
        {
            return null;
        }

        return Plan(log, log.Segments.ToArray(), now).State;
    }

    /// <summary>The cleanable range of a snapshot of the log's segments.</summary>
    private CleaningPlan Plan(PartitionLog log, LogSegment[] segments, long now)
    {
        var config = log.Config;
        var logStart = log.LogStartOffset;
        var checkpoint = log.CleanerCheckpoint;
        var firstDirty = checkpoint < logStart || checkpoint > segments[^1].NextOffset ? logStart : checkpoint;
        var limit = segments[^1].BaseOffset;
        if (CleanableLimit is { } cleanableLimit)
        {
            limit = Math.Min(limit, cleanableLimit(log));
        }

        // The segment holding the first dirty offset (or the first one after it, in a gap) starts the dirty part.
        var dirtyStart = 0;
        while (dirtyStart < segments.Length - 1 && segments[dirtyStart + 1].BaseOffset <= firstDirty)
        {
            dirtyStart++;
        }

        // Closed segments wholly below the limit are cleanable, up to the first one min.compaction.lag.ms holds back.
        var cleanableEnd = 0;
        while (cleanableEnd < segments.Length - 1 && segments[cleanableEnd + 1].BaseOffset <= limit)
        {
            if (cleanableEnd >= dirtyStart && config.MinCompactionLagMs > 0 && segments[cleanableEnd].MaxTimestamp > now - config.MinCompactionLagMs)
            {
                break;
            }

            cleanableEnd++;
        }

        long cleanBytes = 0, dirtyBytes = 0;
        for (var i = 0; i < cleanableEnd; i++)
        {
            if (i < dirtyStart)
            {
                cleanBytes += segments[i].Size;
            }
            else
            {
                dirtyBytes += segments[i].Size;
            }
        }

        var state = new CleanableLog(log, firstDirty, segments[cleanableEnd].BaseOffset, cleanBytes, dirtyBytes, MaxCompactionDelay(config, segments, dirtyStart, now));
        return new CleaningPlan(state, segments, Math.Min(dirtyStart, cleanableEnd), cleanableEnd);
    }

    /// <summary>
    /// How long past max.compaction.lag.ms the oldest dirty record is (0 when it is not), estimated as Kafka does
    /// from the first batch's timestamp of each dirty closed segment.
    /// </summary>
    private static long MaxCompactionDelay(LogConfig config, LogSegment[] segments, int dirtyStart, long now)
    {
        if (config.MaxCompactionLagMs == long.MaxValue)
        {
            return 0;
        }

        var earliest = long.MaxValue;
        for (var i = dirtyStart; i < segments.Length - 1; i++)
        {
            var timestamp = segments[i].FirstBatchTimestamp();
            if (timestamp > 0)
            {
                earliest = Math.Min(earliest, timestamp);
            }
        }

        var cleanUntil = now - Math.Max(0, config.MaxCompactionLagMs);
        return earliest < cleanUntil ? cleanUntil - earliest : 0;
    }

    private CleanResult CleanLocked(PartitionLog log, CancellationToken cancellationToken)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        lock (_stateLock)
        {
            if (_aborted.TryGetValue(log, out _))
            {
                return new CleanResult(log, log.CleanerCheckpoint, log.CleanerCheckpoint, 0, 0, 0, 0, 0, 0, Completed: false);
            }

            _current = log;
            _currentCancel = cancel;
            _notCleaning.Reset();
        }

        try
        {
            return CleanLog(log, cancel.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Aborted for this log only: the pass is over, the cleaner goes on.
            return new CleanResult(log, log.CleanerCheckpoint, log.CleanerCheckpoint, 0, 0, 0, 0, 0, 0, Completed: false);
        }
        catch (ObjectDisposedException)
        {
            // The log was closed or a segment deleted under the cleaner; nothing was committed.
            return new CleanResult(log, log.CleanerCheckpoint, log.CleanerCheckpoint, 0, 0, 0, 0, 0, 0, Completed: false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Corrupt data or a failing disk: Kafka marks the partition uncleanable and goes on with the others.
            lock (_stateLock)
            {
                _uncleanable.AddOrUpdate(log, e);
            }

            throw;
        }
        finally
        {
            lock (_stateLock)
            {
                _current = null;
                _currentCancel = null;
                _notCleaning.Set();
            }
        }
    }

    /// <summary>A snapshot of segments and where its clean, dirty and uncleanable parts start.</summary>
    private sealed record CleaningPlan(CleanableLog State, LogSegment[] Segments, int DirtyStart, int CleanableEnd);
}
