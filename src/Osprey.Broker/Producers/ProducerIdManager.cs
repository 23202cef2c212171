using Osprey.Broker.Control;
using Osprey.Broker.Lifecycle;
using Osprey.Client;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Producers;

/// <summary>
/// Hands out producer ids. The active controller gives this broker ids in blocks (AllocateProducerIds, recorded as a
/// ProducerIdsRecord in the metadata log, as KRaft does), so no id is ever given twice, across restarts and brokers;
/// within a block they come from memory.
/// </summary>
public sealed class ProducerIdManager(IControllerChannel controller, BrokerLifecycleManager lifecycle, BrokerOptions options)
{
    /// <summary>How long a caller waits for the controller to give a block before it is told to retry.</summary>
    public static readonly TimeSpan AllocationTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan RetryBackoff = TimeSpan.FromMilliseconds(100);

    private readonly SemaphoreSlim _lock = new(1, 1);
    private long _next;
    private long _end;

    /// <summary>The next producer id; <see cref="ProducerIdsUnavailableException"/> when no controller gave a block in time.</summary>
    public async ValueTask<long> NextAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_next == _end)
            {
                (_next, _end) = await AllocateAsync(cancellationToken).ConfigureAwait(false);
            }

            return _next++;
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<(long Start, long End)> AllocateAsync(CancellationToken cancellationToken)
    {
        var deadline = options.Time.GetUtcNow() + AllocationTimeout;
        var last = "no controller answered";
        while (true)
        {
            try
            {
                var response = await controller.SendAsync<AllocateProducerIdsResponse>(
                    new AllocateProducerIdsRequest { BrokerId = options.NodeId, BrokerEpoch = lifecycle.BrokerEpoch }, cancellationToken).ConfigureAwait(false);
                var error = (ErrorCode)response.ErrorCode;
                if (error == ErrorCode.None && response.ProducerIdLen > 0)
                {
                    return (response.ProducerIdStart, response.ProducerIdStart + response.ProducerIdLen);
                }

                if (error == ErrorCode.NotController)
                {
                    controller.ControllerMoved();
                }

                // STALE_BROKER_EPOCH: the broker is re-registering (its lifecycle manager sees the same); try again.
                last = $"the controller answered {error.KafkaName()}";
            }
            catch (Exception e) when (e is KafkaException or IOException)
            {
                last = e.Message;
            }

            if (options.Time.GetUtcNow() >= deadline)
            {
                throw new ProducerIdsUnavailableException($"No block of producer ids within {AllocationTimeout.TotalSeconds:0} s: {last}.");
            }

            await Task.Delay(RetryBackoff, options.Time, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>The controller gave no block of producer ids in time; InitProducerId answers COORDINATOR_LOAD_IN_PROGRESS (retriable).</summary>
public sealed class ProducerIdsUnavailableException(string message) : Exception(message);
