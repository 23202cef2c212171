using System.Collections.Concurrent;
using Osprey.Client;
using Osprey.Metadata;
using Osprey.Protocol;

namespace Osprey.Broker.Control;

/// <summary>
/// Requests from this broker to other brokers at their inter-broker listener (the transaction coordinator's
/// WriteTxnMarkers and AddPartitionsToTxn verification): one pipelined connection per broker, made on first use and
/// made again after it fails. A request that gets no answer within <see cref="RequestTimeout"/> (a broker stopped, or
/// cut off) drops its connection.
/// </summary>
public sealed class InterBrokerClient(IMetadataQuorum metadata, BrokerOptions options) : IAsyncDisposable
{
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<int, Lazy<Task<BrokerConnection>>> _connections = new();

    /// <summary>
    /// The answer of broker <paramref name="brokerId"/> to <paramref name="request"/> at the highest version both
    /// sides know, at most <paramref name="maxVersion"/>; <see cref="KafkaException"/> NETWORK_EXCEPTION (retriable)
    /// when it is not registered at the inter-broker listener, cannot be reached, or does not answer in time.
    /// </summary>
    public async Task<TResponse> SendAsync<TResponse>(int brokerId, IApiMessage request, short maxVersion, CancellationToken cancellationToken)
        where TResponse : class, IApiMessage, new()
    {
        ArgumentNullException.ThrowIfNull(request);
        var connection = await ConnectAsync(brokerId, cancellationToken).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            return await connection.SendAsync<TResponse>(request, connection.VersionFor(request.ApiKey, maxVersion), timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await DropAsync(brokerId, connection).ConfigureAwait(false);
            throw new KafkaException(ErrorCode.NetworkException, $"Broker {brokerId} did not answer {request.ApiKey} within {RequestTimeout.TotalSeconds:0} s.");
        }
        catch (KafkaException e) when (e.ErrorCode == ErrorCode.NetworkException)
        {
            await DropAsync(brokerId, connection).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<BrokerConnection> ConnectAsync(int brokerId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var lazy = _connections.GetOrAdd(brokerId, id => new Lazy<Task<BrokerConnection>>(() => OpenAsync(id)));
            BrokerConnection connection;
            try
            {
                connection = await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is KafkaException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                _connections.TryRemove(new KeyValuePair<int, Lazy<Task<BrokerConnection>>>(brokerId, lazy));
                throw e as KafkaException ?? new KafkaException(ErrorCode.NetworkException, $"Cannot connect to broker {brokerId}: {e.Message}", e);
            }

            if (!connection.IsBroken)
            {
                return connection;
            }

            await DropAsync(brokerId, connection).ConfigureAwait(false);
        }
    }

    private async Task<BrokerConnection> OpenAsync(int brokerId)
    {
        var listener = options.InterBrokerListenerName;
        if (!metadata.Image.Brokers.TryGetValue(brokerId, out var broker)
            || broker.Endpoints.FirstOrDefault(e => e.Name.Equals(listener, StringComparison.OrdinalIgnoreCase)) is not { } endpoint)
        {
            throw new KafkaException(ErrorCode.NetworkException, $"Broker {brokerId} has no {listener} endpoint registered.");
        }

        using var timeout = new CancellationTokenSource(RequestTimeout);
        try
        {
            return await BrokerConnection.ConnectAsync(endpoint.Host, endpoint.Port, $"osprey-broker-{options.NodeId}", timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            throw new KafkaException(ErrorCode.NetworkException, $"Cannot connect to broker {brokerId} at {endpoint.Host}:{endpoint.Port} within {RequestTimeout.TotalSeconds:0} s.", e);
        }
    }

    private async Task DropAsync(int brokerId, BrokerConnection connection)
    {
        if (_connections.TryGetValue(brokerId, out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully && ReferenceEquals(lazy.Value.Result, connection))
        {
            _connections.TryRemove(new KeyValuePair<int, Lazy<Task<BrokerConnection>>>(brokerId, lazy));
        }

        await connection.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var lazy in _connections.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                await lazy.Value.Result.DisposeAsync().ConfigureAwait(false);
            }
        }

        _connections.Clear();
    }
}
