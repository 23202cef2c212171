using Osprey.Metadata;

namespace Osprey.Broker.Control;

/// <summary>
/// Waits for this node's metadata image to show a change: a broker that forwarded a CreateTopics to the controller
/// answers once its own image has the topics, so the client's next Metadata request to it finds them.
/// </summary>
public sealed class ImageWaiter : IMetadataPublisher
{
    private readonly IMetadataQuorum _quorum;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly List<(Func<ClusterImage, bool> Condition, TaskCompletionSource Done)> _waiters = [];

    public ImageWaiter(IMetadataQuorum quorum, BrokerOptions options)
    {
        _quorum = quorum;
        _time = options.Time;
        quorum.AddPublisher(this);
    }

    /// <summary>
    /// Completes when the image satisfies <paramref name="condition"/>, or after <paramref name="timeout"/> (false):
    /// the change was made by the controller and reaches this node later, which is no reason to fail the request.
    /// </summary>
    public async Task<bool> WaitAsync(Func<ClusterImage, bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (condition(_quorum.Image))
            {
                return true;
            }

            _waiters.Add((condition, done));
        }

        try
        {
            await done.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        finally
        {
            lock (_lock)
            {
                _waiters.RemoveAll(w => w.Done == done);
            }
        }
    }

    public ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delta);
        lock (_lock)
        {
            foreach (var (condition, done) in _waiters)
            {
                if (condition(delta.After))
                {
                    done.TrySetResult();
                }
            }
        }

        return ValueTask.CompletedTask;
    }
}
