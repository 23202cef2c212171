using System.Net;

namespace Osprey.Broker.Network;

/// <summary>
/// What a connection's requests share. Requests of one connection are handled concurrently, but Kafka handles a
/// connection's requests one after another, and clients rely on that order for the writes they pipeline: an
/// idempotent producer with five requests in flight numbers its batches in sending order, and the broker must append
/// them in that order even when one of them has to wait (a transaction check that takes the coordinator's lock,
/// say) and a later one does not.
/// </summary>
public sealed class ConnectionState(EndPoint? remoteEndPoint)
{
    private Task _appendsDone = Task.CompletedTask;

    public EndPoint? RemoteEndPoint { get; } = remoteEndPoint;

    /// <summary>
    /// Takes the next place in the connection's append order. Called in request order (while the connection's
    /// requests are dispatched, before the first await); the returned turn's <see cref="AppendTurn.Previous"/>
    /// completes once every earlier request's appends are done, and the caller completes its own turn once its
    /// appends are done (or refused).
    /// </summary>
    public AppendTurn TakeAppendTurn()
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var previous = _appendsDone;
        _appendsDone = mine.Task;
        return new AppendTurn(previous, mine);
    }
}

/// <summary>A request's place in its connection's append order.</summary>
public readonly struct AppendTurn(Task previous, TaskCompletionSource done)
{
    /// <summary>Completes when every earlier request of the connection has appended.</summary>
    public Task Previous { get; } = previous;

    /// <summary>Marks this request's appends as done, letting later requests append.</summary>
    public void Complete() => done.TrySetResult();
}
