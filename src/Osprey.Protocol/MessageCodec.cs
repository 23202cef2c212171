using System.Buffers;
using Osprey.Protocol.Primitives;

namespace Osprey.Protocol;

/// <summary>Whole-message helpers over the generated Read/Write/Size.</summary>
public static class MessageCodec
{
    /// <summary>Encodes <paramref name="message"/> at <paramref name="version"/> into a new array.</summary>
    public static byte[] Serialize(IKafkaStruct message, short version)
    {
        var size = message.Size(version);
        var buffer = new byte[size];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        return buffer;
    }

    /// <summary>Encodes <paramref name="message"/> into <paramref name="output"/>, returning the bytes written.</summary>
    public static int Serialize(IKafkaStruct message, short version, IBufferWriter<byte> output)
    {
        var size = message.Size(version);
        var writer = new KafkaWriter(output.GetSpan(size)[..size]);
        message.Write(ref writer, version);
        output.Advance(size);
        return size;
    }

    /// <summary>
    /// An int16 version followed by the message at that version: how embedded schemas (consumer protocol
    /// subscriptions and assignments, __consumer_offsets records) are stored.
    /// </summary>
    public static byte[] SerializeVersioned(IKafkaStruct message, short version)
    {
        var bytes = new byte[2 + message.Size(version)];
        System.Buffers.Binary.BinaryPrimitives.WriteInt16BigEndian(bytes, version);
        var writer = new KafkaWriter(bytes.AsSpan(2));
        message.Write(ref writer, version);
        return bytes;
    }

    /// <summary>
    /// Reads what <see cref="SerializeVersioned"/> wrote. A version above <paramref name="highestKnown"/> is read as
    /// that version (newer versions of these schemas only add fields at the end, which are skipped).
    /// </summary>
    public static T DeserializeVersioned<T>(T message, ReadOnlyMemory<byte> bytes, short highestKnown)
        where T : IKafkaStruct
    {
        if (bytes.Length < 2)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"A versioned {typeof(T).Name} needs at least 2 bytes.");
        }

        var version = System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(bytes.Span);
        var reader = new KafkaReader(bytes[2..]);
        message.Read(ref reader, Math.Clamp(version, (short)0, highestKnown));
        return message;
    }

    /// <summary>A whole request frame: size prefix, request header (v1 or v2 as the version needs) and body.</summary>
    public static byte[] FrameRequest(IApiMessage request, short version, int correlationId, string? clientId)
    {
        var header = new Messages.RequestHeader { RequestApiKey = (short)request.ApiKey, RequestApiVersion = version, CorrelationId = correlationId, ClientId = clientId };
        return Frame(header, ApiMessages.RequestHeaderVersion(request.ApiKey, version), request, version);
    }

    /// <summary>A whole response frame: size prefix, response header (v0 or v1 as the version needs) and body.</summary>
    public static byte[] FrameResponse(IApiMessage response, short version, int correlationId) =>
        Frame(new Messages.ResponseHeader { CorrelationId = correlationId }, ApiMessages.ResponseHeaderVersion(response.ApiKey, version), response, version);

    /// <summary>
    /// Frames larger than this are written into the buffer writer span by span; smaller ones into one contiguous span.
    /// A socket pipe hands out pooled blocks (64 KB here) and satisfies a larger contiguous request by renting an
    /// array of the whole size from the shared array pool, which keeps such arrays: megabyte fetch responses would
    /// leave tens of megabytes in it per connection that ever fetched.
    /// </summary>
    public const int ContiguousFrameLimit = 16 * 1024;

    /// <summary>
    /// Writes a whole response frame straight into <paramref name="output"/> (a socket's pipe, say), so the response
    /// is never staged in an array of its own. Returns the bytes written.
    /// </summary>
    public static int WriteResponseFrame(IApiMessage response, short version, int correlationId, IBufferWriter<byte> output) =>
        WriteFrame(new Messages.ResponseHeader { CorrelationId = correlationId }, ApiMessages.ResponseHeaderVersion(response.ApiKey, version), response, version, output);

    /// <summary>Writes a whole request frame into <paramref name="output"/> (a connection's reusable buffer, say); returns its size.</summary>
    public static int WriteRequestFrame(IApiMessage request, short version, int correlationId, string? clientId, IBufferWriter<byte> output)
    {
        var header = new Messages.RequestHeader { RequestApiKey = (short)request.ApiKey, RequestApiVersion = version, CorrelationId = correlationId, ClientId = clientId };
        return WriteFrame(header, ApiMessages.RequestHeaderVersion(request.ApiKey, version), request, version, output);
    }

    private static int WriteFrame(IKafkaStruct header, short headerVersion, IKafkaStruct body, short version, IBufferWriter<byte> output)
    {
        var size = header.Size(headerVersion) + body.Size(version);
        if (4 + size <= ContiguousFrameLimit)
        {
            var span = output.GetSpan(4 + size)[..(4 + size)];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span, size);
            var writer = new KafkaWriter(span[4..]);
            header.Write(ref writer, headerVersion);
            body.Write(ref writer, version);
            output.Advance(4 + size);
            return 4 + size;
        }

        var streaming = new KafkaWriter(output);
        streaming.WriteInt32(size);
        header.Write(ref streaming, headerVersion);
        body.Write(ref streaming, version);
        streaming.Flush();
        if (streaming.Position != 4 + size)
        {
            throw new InvalidOperationException($"{body.GetType().Name} v{version} wrote {streaming.Position - 4} bytes where its size said {size}.");
        }

        return 4 + size;
    }

    private static byte[] Frame(IKafkaStruct header, short headerVersion, IKafkaStruct body, short version)
    {
        var size = header.Size(headerVersion) + body.Size(version);
        var bytes = new byte[4 + size];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes, size);
        var writer = new KafkaWriter(bytes.AsSpan(4));
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        return bytes;
    }

    /// <summary>Decodes a whole buffer into <paramref name="message"/>; trailing bytes are an error.</summary>
    public static T Deserialize<T>(T message, ReadOnlyMemory<byte> buffer, short version)
        where T : IKafkaStruct
    {
        var reader = new KafkaReader(buffer);
        message.Read(ref reader, version);
        if (!reader.IsAtEnd)
        {
            throw new KafkaProtocolException(
                ErrorCode.InvalidRequest,
                $"{typeof(T).Name} v{version} has {reader.Remaining} unread bytes at its end.");
        }

        return message;
    }
}
