using System.Threading.Channels;

namespace Osprey.Storage;

/// <summary>
/// Group commit. Appenders ask to have their log flushed up to an offset and await the answer; one background
/// loop takes every request that arrived meanwhile, fsyncs each log once up to the greatest offset asked of it
/// (several logs in parallel), and completes them all. Under load, one fsync covers many producers' batches across
/// partitions, which is what makes durable-by-default cheap. On Linux, a round touching several logs uses one
/// syncfs instead of one fsync per log: each fsync of a growing file is a journal commit of its own, while syncfs
/// is a single commit for all of them (measured here: 8 appending files cost ~4.5 ms by fsync, ~2-3 ms by syncfs).
/// </summary>
public sealed class LogFlusher : IAsyncDisposable
{
    private readonly Channel<Request> _requests = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private long _rounds;
    private long _flushes;

    public LogFlusher(int maxParallelFlushes = 4, int syncFileSystemThreshold = 3)
    {
        MaxParallelFlushes = Math.Max(1, maxParallelFlushes);
        SyncFileSystemThreshold = syncFileSystemThreshold;
        _loop = Task.Run(RunAsync);
    }

    public int MaxParallelFlushes { get; }

    /// <summary>From how many logs in one round a single syncfs replaces per-log fsyncs (Linux only; ≤ 0: never).</summary>
    public int SyncFileSystemThreshold { get; }

    /// <summary>How many rounds ran (each completes every request that was waiting).</summary>
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
        if (!_requests.Writer.TryWrite(request))
        {
            return Task.FromException(new ObjectDisposedException(nameof(LogFlusher)));
        }

        return request.Done.Task;
    }

    private async Task RunAsync()
    {
        var batch = new List<Request>();
        while (await _requests.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (_requests.Reader.TryRead(out var request))
            {
                batch.Add(request);
            }

            var byLog = batch.GroupBy(r => r.Log).Select(g => (Log: g.Key, Offset: g.Max(r => r.Offset), Requests: g.ToList())).ToList();
            if (NativeFileSystem.IsSupported && SyncFileSystemThreshold > 0 && byLog.Count >= SyncFileSystemThreshold)
            {
                SyncAll(byLog);
                Interlocked.Increment(ref _rounds);
                continue;
            }

            await Parallel.ForEachAsync(
                byLog,
                new ParallelOptions { MaxDegreeOfParallelism = MaxParallelFlushes },
                (group, _) =>
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

                    return ValueTask.CompletedTask;
                }).ConfigureAwait(false);
            Interlocked.Increment(ref _rounds);
        }
    }

    private void SyncAll(List<(PartitionLog Log, long Offset, List<Request> Requests)> byLog)
    {
        var targets = byLog.Select(g => g.Log.FlushTarget(g.Offset)).ToList();
        try
        {
            // One commit for every log of the data directory's file system.
            NativeFileSystem.SyncFileSystem(byLog[0].Log.ActiveSegment.Handle);
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
        _requests.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private sealed record Request(PartitionLog Log, long Offset, TaskCompletionSource Done);
}
