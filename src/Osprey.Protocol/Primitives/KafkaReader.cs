using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Osprey.Protocol.Primitives;

/// <summary>
/// Reads Kafka primitive types from one contiguous buffer. Every length and count is checked against the bytes
/// that remain before anything is allocated, so hostile input can cost at most as much memory as its own size.
/// Byte fields of type <c>records</c> are returned as slices of the input (no copy): they stay valid as long as
/// the buffer does.
/// </summary>
public ref struct KafkaReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlyMemory<byte> _memory;
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public KafkaReader(ReadOnlyMemory<byte> buffer)
    {
        _memory = buffer;
        _span = buffer.Span;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _span.Length - _position;

    public readonly bool IsAtEnd => _position == _span.Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count)
    {
        if ((uint)count > (uint)(_span.Length - _position))
        {
            throw KafkaProtocolException.Truncated(count, Remaining);
        }

        var slice = _span.Slice(_position, count);
        _position += count;
        return slice;
    }

    public sbyte ReadInt8() => (sbyte)Take(1)[0];

    public bool ReadBool() => Take(1)[0] != 0;

    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));

    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));

    public Guid ReadUuid() => new(Take(16), bigEndian: true);

    /// <summary>Unsigned LEB128 varint of at most 5 bytes (Kafka's UNSIGNED_VARINT).</summary>
    public uint ReadUnsignedVarInt()
    {
        uint value = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = Take(1)[0];
            if (shift == 28 && b > 0x0F)
            {
                throw new KafkaProtocolException(ErrorCode.InvalidRequest, "Unsigned varint is longer than 32 bits.");
            }

            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new KafkaProtocolException(ErrorCode.InvalidRequest, "Unsigned varint is longer than 5 bytes.");
    }

    /// <summary>Zigzag varint (Kafka's VARINT).</summary>
    public int ReadVarInt()
    {
        var raw = ReadUnsignedVarInt();
        return (int)(raw >> 1) ^ -(int)(raw & 1);
    }

    /// <summary>Zigzag varlong of at most 10 bytes (Kafka's VARLONG).</summary>
    public long ReadVarLong()
    {
        ulong value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = Take(1)[0];
            if (shift == 63 && b > 0x01)
            {
                throw new KafkaProtocolException(ErrorCode.InvalidRequest, "Varlong is longer than 64 bits.");
            }

            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return (long)(value >> 1) ^ -(long)(value & 1);
            }
        }

        throw new KafkaProtocolException(ErrorCode.InvalidRequest, "Varlong is longer than 10 bytes.");
    }

    /// <summary>Reads a length prefix: int16/int32 for classic encodings, uvarint-1 for compact ones. -1 means null.</summary>
    private int ReadLength(bool compact, bool wide)
    {
        if (compact)
        {
            var raw = ReadUnsignedVarInt();
            if (raw > int.MaxValue)
            {
                throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"Compact length {raw} is out of range.");
            }

            return (int)raw - 1;
        }

        var length = wide ? ReadInt32() : ReadInt16();
        if (length < -1)
        {
            throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"Negative length {length}.");
        }

        return length;
    }

    public string ReadString(bool compact) =>
        ReadNullableString(compact) ?? throw new KafkaProtocolException(ErrorCode.InvalidRequest, "A non-nullable string was null.");

    public string? ReadNullableString(bool compact)
    {
        var length = ReadLength(compact, wide: false);
        if (length < 0)
        {
            return null;
        }

        var bytes = Take(length);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new KafkaProtocolException(ErrorCode.InvalidRequest, "A string is not valid UTF-8.", e);
        }
    }

    public byte[] ReadBytes(bool compact) =>
        ReadNullableBytes(compact) ?? throw new KafkaProtocolException(ErrorCode.InvalidRequest, "A non-nullable bytes field was null.");

    public byte[]? ReadNullableBytes(bool compact)
    {
        var length = ReadLength(compact, wide: true);
        return length < 0 ? null : Take(length).ToArray();
    }

    /// <summary>A records field: a slice of the input, not a copy. Null is returned as <c>null</c>.</summary>
    public ReadOnlyMemory<byte>? ReadRecords(bool compact)
    {
        var length = ReadLength(compact, wide: true);
        if (length < 0)
        {
            return null;
        }

        var start = _position;
        _ = Take(length);
        return _memory.Slice(start, length);
    }

    /// <summary>
    /// Reads an array length, -1 for null. The count is refused when the remaining bytes cannot hold that many
    /// elements of at least <paramref name="minElementSize"/> bytes, so no list is ever sized from a lie.
    /// </summary>
    public int ReadArrayLength(bool compact, int minElementSize)
    {
        var count = ReadLength(compact, wide: true);
        if (count > 0 && (long)count * Math.Max(minElementSize, 1) > Remaining)
        {
            throw new KafkaProtocolException(
                ErrorCode.InvalidRequest,
                $"Array of {count} elements cannot fit in the {Remaining} bytes that remain.");
        }

        return count;
    }

    /// <summary>Skips <paramref name="count"/> bytes (an unknown tagged field's value).</summary>
    public void Skip(int count) => _ = Take(count);

    /// <summary>Reads a tagged field's size and returns a reader over exactly that many bytes.</summary>
    public KafkaReader ReadTaggedFieldValue(out int size)
    {
        var raw = ReadUnsignedVarInt();
        if (raw > (uint)Remaining)
        {
            throw KafkaProtocolException.Truncated((int)Math.Min(raw, int.MaxValue), Remaining);
        }

        size = (int)raw;
        var start = _position;
        _position += size;
        return new KafkaReader(_memory.Slice(start, size));
    }

    /// <summary>Checks that a tagged field's reader consumed its value completely.</summary>
    public readonly void EnsureConsumed(string fieldName)
    {
        if (!IsAtEnd)
        {
            throw new KafkaProtocolException(
                ErrorCode.InvalidRequest,
                $"Tagged field {fieldName} has {Remaining} trailing bytes.");
        }
    }

    /// <summary>Reads the count of tagged fields. Each needs at least two bytes (tag and size).</summary>
    public int ReadTaggedFieldCount()
    {
        var raw = ReadUnsignedVarInt();
        if (raw > (uint)Remaining / 2)
        {
            throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"{raw} tagged fields cannot fit in {Remaining} bytes.");
        }

        return (int)raw;
    }

    /// <summary>Reads an int8 null marker of a nullable struct: -1 null, anything else present.</summary>
    public bool ReadStructPresent() => ReadInt8() >= 0;
}
