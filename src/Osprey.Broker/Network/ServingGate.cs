namespace Osprey.Broker.Network;

/// <summary>
/// Holds client requests back until the broker may serve them: a broker starts fenced, and Kafka's brokers take
/// client requests only once the controller has unfenced them. Connections are accepted at once; their first request
/// waits here. It opens once and stays open (a broker fenced later keeps serving what it holds, as Kafka's does).
/// </summary>
public sealed class ServingGate
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A gate that is open from the start (the controller listener, which brokers need in order to unfence).</summary>
    public static ServingGate AlwaysOpen { get; } = CreateOpen();

    public Task WhenOpen => _open.Task;

    public void Open() => _open.TrySetResult();

    private static ServingGate CreateOpen()
    {
        var gate = new ServingGate();
        gate.Open();
        return gate;
    }
}
