using System.Diagnostics;

namespace Osprey.Storage;

/// <summary>
/// Group commit. Appenders ask to have their log flushed up to an offset and await the answer; one background
/// loop takes every request that arrived meanwhile, fsyncs each log once up to the greatest offset asked of it
/// (several logs in parallel), and completes them all. Under load, one fsync covers many producers' batches across
/// partitions, which is what makes durable-by-default cheap. On Linux, a round touching several logs uses one
/// syncfs instead of one fsync per log: each fsync of a growing file is a journal commit of its own, while syncfs
/// is a single commit for all of them (measured here: 8 appending files cost ~4.5 ms by fsync, ~2-3 ms by syncfs).
/// The loop runs on a thread of its own: an fsync blocks for a millisecond or more, which a thread-pool thread
/// must not (on a small machine the pool has few). Completions run their continuations on the pool.
/// Rounds start at least <see cref="MinRoundInterval"/> apart (osprey.group.commit.interval.us): measured on this
/// project's VMs, every fsync stalls the machine's I/O briefly for everyone, so 2,000 one-append fsyncs a second
/// put a 10 ms tail on unrelated requests, while one fsync every 2 ms for all of them did not (docs/benchmarks.md).
/// A request that arrives after a quiet spell is flushed at once.
/// </summary>
public sealed class LogFlusher : IAsyncDisposable
{
    private readonly List<Request> _queue = [];
    private readonly Thread _loop;
    private bool _completed;
    private long _rounds;
    private long _flushes;

    public LogFlusher(int maxParallelFlushes = 4, int syncFileSystemThreshold = 3, TimeSpan minRoundInterval = default)
    {
        MaxParallelFlushes = Math.Max(1, maxParallelFlushes);
        SyncFileSystemThreshold = syncFileSystemThreshold;
        MinRoundInterval = minRoundInterval < TimeSpan.Zero ? TimeSpan.Zero : minRoundInterval;
        _loop = new Thread(Run) { IsBackground = true, Name = "osprey-flusher" };
        _loop.Start();
    }

    public int MaxParallelFlushes { get; }

    /// <summary>The least time from the start of one round to the start of the next.</summary>
    public TimeSpan MinRoundInterval { get; }

    /// <summary>From how many logs in one round a single syncfs replaces per-log fsyncs (Linux only; ≤ 0: never).</summary>
    public int SyncFileSystemThreshold { get; }

    /// <summary>How one syncfs is done: <see cref="NativeFileSystem.SyncFileSystem"/>, or a test's failing disk.</summary>
    internal Action<Microsoft.Win32.SafeHandles.SafeFileHandle> FileSystemSyncer { get; set; } = NativeFileSystem.SyncFileSystem;

    /// <summary>Called on the flusher's thread as round N starts, with its requests taken (tests hold a round here).</summary>
    internal Action<long>? RoundStarting { get; set; }

    /// <summary>How many rounds started (each completes every request that was waiting when it started).</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    /// <summary>How many log flushes (fsync batches) ran in total.</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Completes once everything in <paramref name="log"/> below <paramref name="offset"/> is on disk.</summary>
    public Task FlushAsync(PartitionLog log, long offset)
    {
        if (log.RecoveryPoint >= offset)
        {
            return Task.CompletedTask;
        }

        var request = new Request(log, offset, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_queue)
        {
            if (_completed)
            {
                return Task.FromException(new ObjectDisposedException(nameof(LogFlusher)));
            }

            _queue.Add(request);
            if (_queue.Count == 1)
            {
                Monitor.Pulse(_queue);
            }
        }

        return request.Done.Task;
    }

    private void Run()
    {
        var batch = new List<Request>();
        var intervalTicks = (long)(MinRoundInterval.TotalSeconds * Stopwatch.Frequency);
        var lastRoundStarted = long.MinValue / 2;
        while (true)
        {
            lock (_queue)
            {
                while (_queue.Count == 0 && !_completed)
                {
                    Monitor.Wait(_queue);
                }

                if (_queue.Count == 0)
                {
                    return;
                }
            }

            // Too soon after the last round: let more appends join this one.
            var early = lastRoundStarted + intervalTicks - Stopwatch.GetTimestamp();
            if (early > 0)
            {
                PreciseSleep.For(early);
            }

            lastRoundStarted = Stopwatch.GetTimestamp();
            lock (_queue)
            {
                // Everything that arrived while the previous round was on disk goes into this one.
                batch.Clear();
                batch.AddRange(_queue);
                _queue.Clear();
            }

            // Counted before anything completes, so a caller whose flush finished sees its round counted.
            var round = Interlocked.Increment(ref _rounds);
            RoundStarting?.Invoke(round);
            var started = Stopwatch.GetTimestamp();
            var byLog = batch.GroupBy(r => r.Log).Select(g => (Log: g.Key, Offset: g.Max(r => r.Offset), Requests: g.ToList())).ToList();
            if (NativeFileSystem.IsSupported && SyncFileSystemThreshold > 0 && byLog.Count >= SyncFileSystemThreshold)
            {
                SyncAll(byLog);
            }
            else if (byLog.Count == 1)
            {
                FlushOne(byLog[0]);
            }
            else
            {
                Parallel.ForEach(byLog, new ParallelOptions { MaxDegreeOfParallelism = MaxParallelFlushes }, FlushOne);
            }

            StorageMetrics.FlushRound(batch.Count, byLog.Count, started, Stopwatch.GetTimestamp());
        }
    }

    private void FlushOne((PartitionLog Log, long Offset, List<Request> Requests) group)
    {
        try
        {
            group.Log.Flush(group.Offset);
            Interlocked.Increment(ref _flushes);
            foreach (var request in group.Requests)
            {
                request.Done.TrySetResult();
            }
        }
        catch (Exception e)
        {
            foreach (var request in group.Requests)
            {
                request.Done.TrySetException(e);
            }
        }
    }

    private void SyncAll(List<(PartitionLog Log, long Offset, List<Request> Requests)> byLog)
    {
        var targets = byLog.Select(g => g.Log.FlushTarget(g.Offset)).ToList();
        try
        {
            // One commit for every log of the data directory's file system.
            using var file = byLog[0].Log.ActiveSegment.LeaseFile();
            FileSystemSyncer(file.Handle);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            var error = KafkaStorageException.Io("syncfs failed", e);
            foreach (var request in byLog.SelectMany(g => g.Requests))
            {
                request.Done.TrySetException(error);
            }

            return;
        }

        Interlocked.Increment(ref _flushes);
        for (var i = 0; i < byLog.Count; i++)
        {
            byLog[i].Log.MarkFlushed(targets[i]);
            foreach (var request in byLog[i].Requests)
            {
                request.Done.TrySetResult();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_queue)
        {
            _completed = true;
            Monitor.Pulse(_queue);
        }

        // The flush thread finishes the requests already queued, then ends.
        await Task.Run(_loop.Join).ConfigureAwait(false);
    }

    private sealed record Request(PartitionLog Log, long Offset, TaskCompletionSource Done);
}
