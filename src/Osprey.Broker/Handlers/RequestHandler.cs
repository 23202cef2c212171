using System.Net;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

/// <summary>What a handler knows about the request it answers.</summary>
public sealed record RequestContext(RequestHeader Header, ApiKey ApiKey, short ApiVersion, EndPoint? RemoteEndPoint)
{
    public string? ClientId => Header.ClientId;
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
