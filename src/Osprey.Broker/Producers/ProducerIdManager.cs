using Osprey.Metadata;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Producers;

/// <summary>
/// Hands out producer ids. Ids are reserved in blocks through a ProducerIdsRecord in the metadata log (as KRaft
/// does), so no id is ever given twice, across restarts too; within a block they come from memory.
/// </summary>
public sealed class ProducerIdManager(IMetadataQuorum metadata, BrokerIdentity identity)
{
    public const int BlockSize = 1000;

    private readonly SemaphoreSlim _lock = new(1, 1);
    private long _next;
    private long _end;

    public async ValueTask<long> NextAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_next == _end)
            {
                var (_, start) = await metadata.UpdateAsync<long>(
                    image => ([new ProducerIdsRecord { BrokerId = identity.NodeId, BrokerEpoch = 0, NextProducerId = image.NextProducerId + BlockSize }], image.NextProducerId),
                    cancellationToken).ConfigureAwait(false);
                (_next, _end) = (start, start + BlockSize);
            }

            return _next++;
        }
        finally
        {
            _lock.Release();
        }
    }
}
