using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Osprey.Broker.Handlers;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Broker.Network;

/// <summary>
/// From a request frame to a response frame: header, registry lookup by (key, version), decode, handler, encode.
/// The handlers registered here are exactly what ApiVersions advertises, so the two cannot disagree.
/// </summary>
public sealed partial class RequestDispatcher
{
    private readonly FrozenDictionary<ApiKey, IRequestHandler> _handlers;
    private readonly ILogger _logger;

    public RequestDispatcher(IEnumerable<IRequestHandler> handlers, ILogger<RequestDispatcher>? logger = null)
    {
        _handlers = handlers.ToFrozenDictionary(h => h.ApiKey);
        _logger = (ILogger?)logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    public IEnumerable<IRequestHandler> Handlers => _handlers.Values;

    /// <summary>
    /// Handles one request frame. Returns the response frame (size prefix included), or null when the request gets
    /// no response (produce with acks=0). Throws <see cref="KafkaProtocolException"/> when the connection must be
    /// closed: an unknown API, an unsupported version of anything but ApiVersions, a malformed request.
    /// </summary>
    public async ValueTask<PendingResponse?> DispatchAsync(ReadOnlyMemory<byte> frame, ConnectionState connection, CancellationToken cancellationToken)
    {
        if (frame.Length < 8)
        {
            throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"A request of {frame.Length} bytes is too short for its header.");
        }

        var key = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame.Span);
        var version = BinaryPrimitives.ReadInt16BigEndian(frame.Span[2..]);
        if (!_handlers.TryGetValue(key, out var handler) || version < handler.MinVersion || version > handler.MaxVersion)
        {
            if (key == ApiKey.ApiVersions)
            {
                // Answer in the v0 shape so a client that asked too high can read the ranges and retry.
                var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
                return new PendingResponse(ApiVersionsHandler.Build(_handlers.Values, ErrorCode.UnsupportedVersion), 0, correlationId, null);
            }

            return Unsupported(frame, key, version, handler, connection);
        }

        var reader = new KafkaReader(frame);
        var header = new RequestHeader();
        header.Read(ref reader, ApiMessages.RequestHeaderVersion(key, version));
        var request = ApiMessages.CreateRequest(key);
        request.Read(ref reader, version);

        // Bytes after the body are ignored, as Kafka ignores them: librdkafka 2.x writes a 4-byte null topic array
        // in flexible Metadata requests for "all topics" (librdkafka issue #5049), which Kafka reads as a 1-byte
        // null followed by three zero bytes it never looks at.

        var context = new RequestContext(header, key, version, connection);
        IApiMessage response;
        try
        {
            response = await handler.HandleAsync(context, request, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            context.ReleaseResponseBuffers();
            throw;
        }

        if (key == ApiKey.Produce && request is ProduceRequest { Acks: 0 })
        {
            context.ReleaseResponseBuffers();
            return null;
        }

        return new PendingResponse(response, version, header.CorrelationId, context);
    }

    /// <summary>
    /// A request this broker does not serve (an API it does not advertise, or a version outside what it does) is
    /// answered, where the API's response has a top-level error code, with UNSUPPORTED_VERSION, so that the client
    /// reports an error instead of retrying a dropped connection. Only a key or version the codec cannot encode an
    /// answer for, or a response with nowhere to put the error, closes the connection. Either way a line is logged.
    /// </summary>
    private PendingResponse Unsupported(ReadOnlyMemory<byte> frame, ApiKey key, short version, IRequestHandler? handler, ConnectionState connection)
    {
        var served = handler is null ? "is not served by this broker" : $"is served at versions {handler.MinVersion} to {handler.MaxVersion} only";
        var message = $"{key} v{version} {served}.";
        if (!ApiMessages.TryGet(key, out var api) || !api.Supports(version))
        {
            LogUnsupported(_logger, (short)key, version, connection.RemoteEndPoint, message, "closing the connection");
            throw new KafkaProtocolException(ErrorCode.UnsupportedVersion, message);
        }

        var reader = new KafkaReader(frame);
        var header = new RequestHeader();
        header.Read(ref reader, ApiMessages.RequestHeaderVersion(key, version));
        var response = ApiMessages.CreateResponse(key);
        var errorCode = response.GetType().GetProperty("ErrorCode", BindingFlags.Public | BindingFlags.Instance);
        if (errorCode?.PropertyType != typeof(short))
        {
            LogUnsupported(_logger, (short)key, version, connection.RemoteEndPoint, message, "closing the connection (its response has no top-level error code)");
            throw new KafkaProtocolException(ErrorCode.UnsupportedVersion, message);
        }

        errorCode.SetValue(response, (short)ErrorCode.UnsupportedVersion);
        if (response.GetType().GetProperty("ErrorMessage", BindingFlags.Public | BindingFlags.Instance) is { PropertyType: var type } errorMessage && type == typeof(string))
        {
            errorMessage.SetValue(response, message);
        }

        // An ignorable field outside its versions is left off the wire without complaint: make sure the error
        // code really is in this version's response, or the client would read a success.
        var echoed = MessageCodec.Deserialize(ApiMessages.CreateResponse(key), MessageCodec.Serialize(response, version), version);
        if (!Equals(errorCode.GetValue(echoed), (short)ErrorCode.UnsupportedVersion))
        {
            LogUnsupported(_logger, (short)key, version, connection.RemoteEndPoint, message, "closing the connection (this version's response has no top-level error code)");
            throw new KafkaProtocolException(ErrorCode.UnsupportedVersion, message);
        }

        LogUnsupported(_logger, (short)key, version, connection.RemoteEndPoint, message, "answered UNSUPPORTED_VERSION");
        return new PendingResponse(response, version, header.CorrelationId, null);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Request for API {ApiKey} v{Version} from {Client}: {Reason} {Action}")]
    private static partial void LogUnsupported(ILogger logger, short apiKey, short version, System.Net.EndPoint? client, string reason, string action);
}

/// <summary>
/// A handled request's answer, encoded only when its turn to be written comes: straight into the connection's
/// output pipe, after which the pooled buffers it points into go back to the pool.
/// </summary>
public sealed class PendingResponse(IApiMessage body, short version, int correlationId, RequestContext? context)
{
    /// <summary>Writes the frame (size prefix, header, body) into <paramref name="output"/>; returns its size.</summary>
    public int WriteTo(IBufferWriter<byte> output) => MessageCodec.WriteResponseFrame(body, version, correlationId, output);

    /// <summary>Returns the response's pooled buffers; the response must not be written after this.</summary>
    public void Release() => context?.ReleaseResponseBuffers();
}
