using System.Threading.Channels;

namespace Osprey.Storage;

/// <summary>
/// Group commit. Appenders ask to have their log flushed up to an offset and await the answer; one background
/// loop takes every request that arrived meanwhile, fsyncs each log once up to the greatest offset asked of it
/// (several logs in parallel), and completes them all. Under load, one fsync covers many producers' batches across
/// partitions, which is what makes durable-by-default cheap.
/// </summary>
public sealed class LogFlusher : IAsyncDisposable
{
    private readonly Channel<Request> _requests = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private long _rounds;
    private long _flushes;

    public LogFlusher(int maxParallelFlushes = 4)
    {
        MaxParallelFlushes = Math.Max(1, maxParallelFlushes);
        _loop = Task.Run(RunAsync);
    }

    public int MaxParallelFlushes { get; }

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

    public async ValueTask DisposeAsync()
    {
        _requests.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private sealed record Request(PartitionLog Log, long Offset, TaskCompletionSource Done);
}
