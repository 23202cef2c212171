namespace Osprey.Broker.Network;

/// <summary>
/// queued.max.request.bytes: the bytes of requests read but not yet handled, over all connections. A connection
/// that would go over the limit stops reading until enough is released (Kafka mutes such channels), so a flood of
/// large produce requests cannot grow the broker's memory without bound. A request larger than the whole limit is
/// still admitted when nothing else is held, so it cannot wait forever. A limit ≤ 0 means no limit.
/// </summary>
public sealed class RequestMemoryPool(long limit)
{
    private readonly Queue<(int Bytes, TaskCompletionSource Admitted)> _waiting = new();
    private long _used;

    public long Limit => limit;

    /// <summary>Bytes held by requests being handled.</summary>
    public long Used
    {
        get
        {
            lock (_waiting)
            {
                return _used;
            }
        }
    }

    /// <summary>Completes once <paramref name="bytes"/> may be held; first come, first served.</summary>
    public ValueTask AcquireAsync(int bytes, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            return ValueTask.CompletedTask;
        }

        TaskCompletionSource admitted;
        lock (_waiting)
        {
            if (_waiting.Count == 0 && Fits(bytes))
            {
                _used += bytes;
                return ValueTask.CompletedTask;
            }

            admitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Enqueue((bytes, admitted));
        }

        return new ValueTask(WaitAsync(bytes, admitted, cancellationToken));
    }

    /// <summary>Gives back what <see cref="AcquireAsync"/> took, admitting waiters in order.</summary>
    public void Release(int bytes)
    {
        if (limit <= 0)
        {
            return;
        }

        lock (_waiting)
        {
            _used -= bytes;
            AdmitWaiters();
        }
    }

    private async Task WaitAsync(int bytes, TaskCompletionSource admitted, CancellationToken cancellationToken)
    {
        try
        {
            await admitted.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (_waiting)
            {
                if (admitted.Task.IsCompletedSuccessfully)
                {
                    // Admitted just as the wait was cancelled: give the bytes back.
                    _used -= bytes;
                }
                else
                {
                    admitted.TrySetCanceled(cancellationToken);
                }

                AdmitWaiters();
            }

            throw;
        }
    }

    private void AdmitWaiters()
    {
        while (_waiting.TryPeek(out var next))
        {
            if (next.Admitted.Task.IsCanceled)
            {
                _waiting.Dequeue();
                continue;
            }

            if (!Fits(next.Bytes))
            {
                return;
            }

            _waiting.Dequeue();
            _used += next.Bytes;
            next.Admitted.TrySetResult();
        }
    }

    private bool Fits(int bytes) => _used == 0 || _used + bytes <= limit;
}
