using System.Buffers;
using System.Net;
using Osprey.Broker.Network;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

/// <summary>What a handler knows about the request it answers.</summary>
public sealed record RequestContext(RequestHeader Header, ApiKey ApiKey, short ApiVersion, ConnectionState Connection)
{
    private readonly List<byte[]> _rented = [];

    public EndPoint? RemoteEndPoint => Connection.RemoteEndPoint;

    public string? ClientId => Header.ClientId;

    /// <summary>
    /// A pooled buffer of at least <paramref name="minimumLength"/> bytes for the response to point into (fetched
    /// records, say). It goes back to the pool once the response has been written to the connection.
    /// </summary>
    public byte[] RentResponseBuffer(int minimumLength)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(minimumLength);
        lock (_rented)
        {
            _rented.Add(buffer);
        }

        return buffer;
    }

    /// <summary>Returns the buffers rented for the response; called once it has been written (or dropped).</summary>
    public void ReleaseResponseBuffers()
    {
        lock (_rented)
        {
            foreach (var buffer in _rented)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            _rented.Clear();
        }
    }
}

/// <summary>One Kafka API, at the versions this broker implements (which ApiVersions advertises).</summary>
public interface IRequestHandler
{
    ApiKey ApiKey { get; }

    short MinVersion { get; }

    short MaxVersion { get; }

    ValueTask<IApiMessage> HandleAsync(RequestContext context, IApiMessage request, CancellationToken cancellationToken);
}

/// <summary>A typed handler: one file per API, with its version notes at the top.</summary>
public abstract class RequestHandler<TRequest, TResponse> : IRequestHandler
    where TRequest : IApiMessage
    where TResponse : IApiMessage
{
    public abstract ApiKey ApiKey { get; }

    public abstract short MinVersion { get; }

    public abstract short MaxVersion { get; }

    public async ValueTask<IApiMessage> HandleAsync(RequestContext context, IApiMessage request, CancellationToken cancellationToken) =>
        await HandleAsync(context, (TRequest)request, cancellationToken).ConfigureAwait(false);

    protected abstract ValueTask<TResponse> HandleAsync(RequestContext context, TRequest request, CancellationToken cancellationToken);
}
