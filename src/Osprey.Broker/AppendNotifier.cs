namespace Osprey.Broker;

/// <summary>Wakes long-polling fetches when anything is appended.</summary>
public sealed class AppendNotifier
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A task that completes at the next append.</summary>
    public Task NextAppend => Volatile.Read(ref _next).Task;

    public void Notify() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
