using System.Buffers;
using System.Buffers.Binary;
using Osprey.Protocol;

namespace Osprey.Broker.Network;

/// <summary>
/// Kafka framing: a 4-byte big-endian size, then that many bytes of request (header and body).
/// <code>
///  0        4                    4 + size
///  +--------+--------------------+
///  | size   | header | body      |
///  +--------+--------------------+
/// </code>
/// </summary>
public static class FrameReader
{
    /// <summary>
    /// Takes one complete frame off the front of <paramref name="buffer"/>. A size over
    /// <paramref name="maxFrameBytes"/> (or negative) is refused before anything is allocated.
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameBytes, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < 4)
        {
            return false;
        }

        Span<byte> sizeBytes = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(sizeBytes);
        var size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
        if (size < 0 || size > maxFrameBytes)
        {
            throw new KafkaProtocolException(
                ErrorCode.InvalidRequest,
                $"Request of {size} bytes refused: socket.request.max.bytes is {maxFrameBytes}.");
        }

        if (buffer.Length < 4L + size)
        {
            return false;
        }

        frame = buffer.Slice(4, size);
        buffer = buffer.Slice(4L + size);
        return true;
    }
}
