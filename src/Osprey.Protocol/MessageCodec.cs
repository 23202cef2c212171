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
