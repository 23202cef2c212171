using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Frozen;
using Osprey.Broker.Handlers;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Broker.Network;

/// <summary>
/// From a request frame to a response frame: header, registry lookup by (key, version), decode, handler, encode.
/// The handlers registered here are exactly what ApiVersions advertises, so the two cannot disagree.
/// </summary>
public sealed class RequestDispatcher
{
    private readonly FrozenDictionary<ApiKey, IRequestHandler> _handlers;

    public RequestDispatcher(IEnumerable<IRequestHandler> handlers)
    {
        _handlers = handlers.ToFrozenDictionary(h => h.ApiKey);
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
        if (!_handlers.TryGetValue(key, out var handler) || !ApiMessages.TryGet(key, out _))
        {
            throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"Unknown or unsupported API key {(short)key}.");
        }

        if (version < handler.MinVersion || version > handler.MaxVersion)
        {
            if (key == ApiKey.ApiVersions)
            {
                // Answer in the v0 shape so a client that asked too high can read the ranges and retry.
                var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
                return new PendingResponse(ApiVersionsHandler.Build(_handlers.Values, ErrorCode.UnsupportedVersion), 0, correlationId, null);
            }

            throw new KafkaProtocolException(
                ErrorCode.UnsupportedVersion,
                $"{key} v{version} is not supported; versions {handler.MinVersion} to {handler.MaxVersion} are.");
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
