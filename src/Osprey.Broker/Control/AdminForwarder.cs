using Osprey.Client;
using Osprey.Metadata;
using Osprey.Protocol;

namespace Osprey.Broker.Control;

/// <summary>
/// Sends the admin requests that change metadata (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
/// IncrementalAlterConfigs, AlterUserScramCredentials) from a broker that is not the active controller to the one
/// that is, over its CONTROLLER listener and at the version the client used; the controller's answer goes back to the
/// client unchanged. Requests reach the controller as the client sent them (no Envelope): Osprey has no
/// authentication yet whose principal the controller would need.
/// </summary>
public sealed class AdminForwarder : IAsyncDisposable
{
    /// <summary>How long a request waits for an active controller that answers before NOT_CONTROLLER.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a broker waits for its own image to show what the controller did before it answers anyway.</summary>
    public static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan RetryBackoff = TimeSpan.FromMilliseconds(100);

    private readonly IMetadataQuorum _quorum;
    private readonly BrokerOptions _options;
    private readonly bool _controllerListener;
    private readonly SemaphoreSlim _connect = new(1, 1);
    private (int Id, BrokerConnection Connection)? _connection;

    public AdminForwarder(IMetadataQuorum quorum, BrokerOptions options)
        : this(quorum, options, controllerListener: false)
    {
    }

    private AdminForwarder(IMetadataQuorum quorum, BrokerOptions options, bool controllerListener)
    {
        _quorum = quorum;
        _options = options;
        _controllerListener = controllerListener;
    }

    /// <summary>
    /// The forwarder of the handlers on the CONTROLLER listener, which never forwards: a request there is the
    /// controller's to decide, or to refuse with NOT_CONTROLLER when this node is not the active one.
    /// </summary>
    public AdminForwarder ForControllerListener() => new(_quorum, _options, controllerListener: true);

    /// <summary>True on the CONTROLLER listener: requests come from brokers, or from clients that bootstrap from controllers.</summary>
    public bool OnControllerListener => _controllerListener;

    /// <summary>A request must go to the active controller: it came to a broker listener of a node that is not it.</summary>
    public bool ShouldForward => !_controllerListener && !_quorum.IsActiveController;

    /// <summary>
    /// The active controller's answer to <paramref name="request"/>, sent at <paramref name="version"/>. Waits (up to
    /// <see cref="Timeout"/>) while there is no active controller, or it cannot be reached, and tries again; then,
    /// or when the connection fails after the request went out (it may have been carried out), throws
    /// <see cref="NotControllerException"/>, which handlers answer with NOT_CONTROLLER (retriable).
    /// </summary>
    public async Task<TResponse> ForwardAsync<TResponse>(IApiMessage request, short version, CancellationToken cancellationToken)
        where TResponse : class, IApiMessage, new()
    {
        var deadline = _options.Time.GetUtcNow() + Timeout;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var leader = _quorum.ActiveControllerId;
            if (leader == _options.NodeId)
            {
                // This node became the controller meanwhile: the client's retry will be decided here.
                throw new NotControllerException(leader, "The active controller changed while the request was forwarded.");
            }

            var connection = leader is { } id ? await ConnectAsync(id, cancellationToken).ConfigureAwait(false) : null;
            if (connection is not null)
            {
                var sendVersion = connection.VersionFor(request.ApiKey, version, version);
                try
                {
                    return await connection.SendAsync<TResponse>(request, sendVersion, cancellationToken).ConfigureAwait(false);
                }
                catch (KafkaException e) when (e.ErrorCode == ErrorCode.NetworkException)
                {
                    await DropAsync(connection).ConfigureAwait(false);
                    throw new NotControllerException(leader, $"Lost the connection to controller {leader} while it handled the request: {e.Message}");
                }
            }

            if (_options.Time.GetUtcNow() >= deadline)
            {
                throw new NotControllerException(leader, $"No active controller answered within {Timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(RetryBackoff, _options.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Forwards <paramref name="request"/> (cut down to the entries this node does not answer itself) and copies the
    /// controller's error for each entry onto <paramref name="results"/>, matched by <paramref name="key"/>; every
    /// entry gets NOT_CONTROLLER when no controller answered.
    /// </summary>
    public async Task ForwardEachAsync<TResponse, TResult, TKey>(
        IApiMessage request,
        short version,
        IReadOnlyList<TResult> results,
        Func<TResponse, IEnumerable<TResult>> answers,
        Func<TResult, TKey> key,
        Func<TResult, (short Code, string? Message)> errorOf,
        Action<TResult, (short Code, string? Message)> setError,
        CancellationToken cancellationToken)
        where TResponse : class, IApiMessage, new()
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(answers);
        ArgumentNullException.ThrowIfNull(setError);
        List<TResult> theirs;
        try
        {
            theirs = [.. answers(await ForwardAsync<TResponse>(request, version, cancellationToken).ConfigureAwait(false))];
        }
        catch (NotControllerException e)
        {
            foreach (var result in results)
            {
                setError(result, ((short)ErrorCode.NotController, e.Message));
            }

            return;
        }

        foreach (var result in results)
        {
            var match = theirs.FirstOrDefault(t => EqualityComparer<TKey>.Default.Equals(key(t), key(result)));
            setError(result, match is null ? ((short)ErrorCode.UnknownServerError, "The controller did not answer for this entry.") : errorOf(match));
        }
    }

    /// <summary>The connection to controller <paramref name="id"/>, made if need be; null when it cannot be reached.</summary>
    private async Task<BrokerConnection?> ConnectAsync(int id, CancellationToken cancellationToken)
    {
        await _connect.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_connection is { } current && current.Id == id && !current.Connection.IsBroken)
            {
                return current.Connection;
            }

            if (_connection is { } stale)
            {
                _connection = null;
                await stale.Connection.DisposeAsync().ConfigureAwait(false);
            }

            if (_options.Voters.FirstOrDefault(v => v.Id == id) is not { } voter)
            {
                return null;
            }

            try
            {
                var connection = await BrokerConnection.ConnectAsync(voter.Host, voter.Port, $"osprey-forwarder-{_options.NodeId}", cancellationToken).ConfigureAwait(false);
                _connection = (id, connection);
                return connection;
            }
            catch (Exception e) when (e is KafkaException or IOException)
            {
                return null;
            }
        }
        finally
        {
            _connect.Release();
        }
    }

    private async Task DropAsync(BrokerConnection connection)
    {
        await _connect.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_connection is { } current && ReferenceEquals(current.Connection, connection))
            {
                _connection = null;
            }
        }
        finally
        {
            _connect.Release();
        }

        await connection.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is { } current)
        {
            _connection = null;
            await current.Connection.DisposeAsync().ConfigureAwait(false);
        }

        _connect.Dispose();
    }
}
