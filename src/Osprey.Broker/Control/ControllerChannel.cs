using Osprey.Client;
using Osprey.Protocol;

namespace Osprey.Broker.Control;

/// <summary>
/// How a broker reaches the active controller (Kafka's NodeToControllerChannelManager): one request at a time, the
/// answer or an exception. A failed send drops the connection, so the next one starts afresh (with the next voter).
/// </summary>
public interface IControllerChannel : IAsyncDisposable
{
    Task<TResponse> SendAsync<TResponse>(IApiMessage request, CancellationToken cancellationToken)
        where TResponse : class, IApiMessage, new();

    /// <summary>The controller answered NOT_CONTROLLER: the next request goes to another voter.</summary>
    void ControllerMoved();
}

/// <summary>A node that is its own quorum without a controller listener: its broker calls its controller directly.</summary>
public sealed class LocalControllerChannel(ControllerService controller) : IControllerChannel
{
    public async Task<TResponse> SendAsync<TResponse>(IApiMessage request, CancellationToken cancellationToken)
        where TResponse : class, IApiMessage, new() =>
        (TResponse)await controller.HandleAsync(request, cancellationToken).ConfigureAwait(false);

    public void ControllerMoved()
    {
        // There is no other controller to move to.
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// The controllers' CONTROLLER listeners, over Kafka's protocol: one connection, to one voter at a time, with the
/// versions negotiated by ApiVersions. When a voter cannot be reached or says it is not the controller, the next
/// request tries the next voter. The list is asked for at each connection, since ports bound at start are known late.
/// </summary>
public sealed class NetworkControllerChannel(Func<IReadOnlyList<(string Host, int Port)>> controllers, string clientId) : IControllerChannel
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private BrokerConnection? _connection;
    private int _next;
    private bool _moved;

    public async Task<TResponse> SendAsync<TResponse>(IApiMessage request, CancellationToken cancellationToken)
        where TResponse : class, IApiMessage, new()
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _moved))
            {
                Volatile.Write(ref _moved, false);
                _next++;
                await DropAsync().ConfigureAwait(false);
            }

            if (_connection is null or { IsBroken: true })
            {
                await DropAsync().ConfigureAwait(false);
                // Read at each connect: a port bound at start (port 0 in tests) is known only then.
                var endpoints = controllers();
                var (host, port) = endpoints[_next % endpoints.Count];
                _connection = await BrokerConnection.ConnectAsync(host, port, clientId, cancellationToken).ConfigureAwait(false);
            }

            var connection = _connection;
            try
            {
                var version = connection.VersionFor(request.ApiKey, request.HighestSupportedVersion, request.LowestSupportedVersion);
                return await connection.SendAsync<TResponse>(request, version, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is KafkaException or IOException or OperationCanceledException)
            {
                await DropAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch (KafkaException)
        {
            _next++;
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void ControllerMoved() => Volatile.Write(ref _moved, true);

    private async Task DropAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            await DropAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }

        _gate.Dispose();
    }
}
