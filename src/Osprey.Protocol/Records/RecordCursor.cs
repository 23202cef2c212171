using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Osprey.Protocol.Records;

/// <summary>
/// Reads the varint-framed fields of records. Unlike <see cref="Primitives.KafkaReader"/> every failure is
/// CORRUPT_MESSAGE: the request frame was fine, the record data inside it is not.
/// </summary>
internal ref struct RecordCursor
{
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public RecordCursor(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _span.Length - _position;

    public byte ReadByte(string field)
    {
        if ((uint)_position >= (uint)_span.Length)
        {
            ThrowTruncated(field, 1);
        }

        return _span[_position++];
    }

    /// <summary>Zigzag varint of at most 5 bytes whose value fits in 32 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadVarInt(string field)
    {
        // Most varints in a record (lengths, deltas, counts) are one byte.
        if ((uint)_position < (uint)_span.Length && _span[_position] < 0x80)
        {
            uint small = _span[_position++];
            return (int)(small >> 1) ^ -(int)(small & 1);
        }

        return ReadVarIntSlow(field);
    }

    private int ReadVarIntSlow(string field)
    {
        uint raw = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = ReadByte(field);
            if (shift == 28 && b > 0x0F)
            {
                ThrowCorrupt($"The varint {field} is longer than 32 bits.");
            }

            raw |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return (int)(raw >> 1) ^ -(int)(raw & 1);
            }
        }
    }

    /// <summary>Zigzag varlong of at most 10 bytes whose value fits in 64 bits.</summary>
    public long ReadVarLong(string field)
    {
        ulong raw = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = ReadByte(field);
            if (shift == 63 && b > 0x01)
            {
                ThrowCorrupt($"The varlong {field} is longer than 64 bits.");
            }

            raw |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return (long)(raw >> 1) ^ -(long)(raw & 1);
            }
        }
    }

    public ReadOnlySpan<byte> ReadBytes(int length, string field)
    {
        if ((uint)length > (uint)Remaining)
        {
            ThrowTruncated(field, length);
        }

        var slice = _span.Slice(_position, length);
        _position += length;
        return slice;
    }

    /// <summary>A varint length prefix followed by that many bytes; -1 means null.</summary>
    public ReadOnlySpan<byte> ReadNullableBytes(string field, out bool isNull)
    {
        var length = ReadVarInt(field);
        if (length < 0)
        {
            if (length != -1)
            {
                ThrowCorrupt($"The {field} length {length} is negative.");
            }

            isNull = true;
            return default;
        }

        isNull = false;
        return ReadBytes(length, field);
    }

    [DoesNotReturn]
    private readonly void ThrowTruncated(string field, int needed) =>
        ThrowCorrupt($"Record data ends inside {field}: it needs {needed} bytes but only {Remaining} remain.");

    [DoesNotReturn]
    public static void ThrowCorrupt(string message) => throw new KafkaProtocolException(ErrorCode.CorruptMessage, message);
}
