using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Osprey.Protocol.Primitives;

/// <summary>
/// Writes Kafka primitive types into a span sized beforehand by the message's <c>Size</c> method, or, for messages
/// too large for one span (a fetch response of many megabytes), into an <see cref="IBufferWriter{T}"/> one span at
/// a time, so a socket pipe's pooled blocks take the message and no array of the whole message's size is needed.
/// Writing past the end of a fixed span is a bug in the size computation, not bad input, so it fails loudly.
/// </summary>
public ref struct KafkaWriter
{
    private readonly IBufferWriter<byte>? _output;
    private Span<byte> _span;
    private int _position;
    private int _committed;

    public KafkaWriter(Span<byte> destination)
    {
        _span = destination;
        _position = 0;
    }

    /// <summary>Writes into <paramref name="output"/>'s spans as they fill; call <see cref="Flush"/> at the end.</summary>
    public KafkaWriter(IBufferWriter<byte> output)
    {
        _output = output;
        _span = output.GetSpan();
        _position = 0;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Position => _committed + _position;

    /// <summary>Commits what was written into the current span of the buffer writer (nothing for a fixed span).</summary>
    public void Flush()
    {
        if (_output is not null && _position > 0)
        {
            _output.Advance(_position);
            _committed += _position;
            _span = default;
            _position = 0;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Take(int count)
    {
        if (count > _span.Length - _position)
        {
            NextSpan(count);
        }

        var slice = _span.Slice(_position, count);
        _position += count;
        return slice;
    }

    /// <summary>Moves to a fresh span of at least <paramref name="count"/> bytes (buffer-writer mode only).</summary>
    private void NextSpan(int count)
    {
        if (_output is null)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Writing {count} bytes at {_position} overruns a buffer of {_span.Length}: the message's size was computed wrongly.");
        }

        Flush();
        _span = _output.GetSpan(count);
    }

    /// <summary>Copies <paramref name="bytes"/> across as many spans as it takes.</summary>
    private void Copy(ReadOnlySpan<byte> bytes)
    {
        if (_output is null || bytes.Length <= _span.Length - _position)
        {
            bytes.CopyTo(Take(bytes.Length));
            return;
        }

        while (!bytes.IsEmpty)
        {
            if (_span.Length == _position)
            {
                NextSpan(1);
            }

            var part = Math.Min(bytes.Length, _span.Length - _position);
            bytes[..part].CopyTo(_span[_position..]);
            _position += part;
            bytes = bytes[part..];
        }
    }

    public void WriteInt8(sbyte value) => Take(1)[0] = (byte)value;

    public void WriteBool(bool value) => Take(1)[0] = value ? (byte)1 : (byte)0;

    public void WriteInt16(short value) => BinaryPrimitives.WriteInt16BigEndian(Take(2), value);

    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Take(2), value);

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Take(4), value);

    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Take(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), value);

    public void WriteFloat64(double value) => BinaryPrimitives.WriteDoubleBigEndian(Take(8), value);

    public void WriteUuid(Guid value) => value.TryWriteBytes(Take(16), bigEndian: true, out _);

    public void WriteUnsignedVarInt(uint value)
    {
        while (value >= 0x80)
        {
            Take(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }

        Take(1)[0] = (byte)value;
    }

    public void WriteVarInt(int value) => WriteUnsignedVarInt((uint)((value << 1) ^ (value >> 31)));

    public void WriteVarLong(long value)
    {
        var raw = (ulong)((value << 1) ^ (value >> 63));
        while (raw >= 0x80)
        {
            Take(1)[0] = (byte)(raw | 0x80);
            raw >>= 7;
        }

        Take(1)[0] = (byte)raw;
    }

    private void WriteLength(int length, bool compact, bool wide)
    {
        if (compact)
        {
            WriteUnsignedVarInt((uint)(length + 1));
        }
        else if (wide)
        {
            WriteInt32(length);
        }
        else
        {
            WriteInt16((short)length);
        }
    }

    public void WriteString(string? value, bool compact)
    {
        if (value is null)
        {
            WriteLength(-1, compact, wide: false);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        if (!compact && length > short.MaxValue)
        {
            throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"A string of {length} bytes is longer than 32767.");
        }

        WriteLength(length, compact, wide: false);
        Encoding.UTF8.GetBytes(value, Take(length));
    }

    public void WriteBytes(ReadOnlySpan<byte> value, bool compact)
    {
        WriteLength(value.Length, compact, wide: true);
        Copy(value);
    }

    public void WriteNullableBytes(byte[]? value, bool compact)
    {
        if (value is null)
        {
            WriteLength(-1, compact, wide: true);
        }
        else
        {
            WriteBytes(value, compact);
        }
    }

    public void WriteRecords(ReadOnlyMemory<byte>? value, bool compact)
    {
        if (value is null)
        {
            WriteLength(-1, compact, wide: true);
        }
        else
        {
            WriteBytes(value.Value.Span, compact);
        }
    }

    /// <summary>Writes an array length, or -1 for a null array.</summary>
    public void WriteArrayLength(int count, bool compact) => WriteLength(count, compact, wide: true);

    /// <summary>Writes the int8 marker of a nullable struct.</summary>
    public void WriteStructPresent(bool present) => WriteInt8(present ? (sbyte)1 : (sbyte)-1);

    public void WriteRaw(ReadOnlySpan<byte> bytes) => Copy(bytes);
}

/// <summary>Encoded sizes of Kafka primitive types, matching <see cref="KafkaWriter"/> exactly.</summary>
public static class KafkaSize
{
    public static int UnsignedVarInt(uint value) => value switch
    {
        < 1u << 7 => 1,
        < 1u << 14 => 2,
        < 1u << 21 => 3,
        < 1u << 28 => 4,
        _ => 5,
    };

    public static int VarInt(int value) => UnsignedVarInt((uint)((value << 1) ^ (value >> 31)));

    public static int VarLong(long value)
    {
        var raw = (ulong)((value << 1) ^ (value >> 63));
        var size = 1;
        while (raw >= 0x80)
        {
            raw >>= 7;
            size++;
        }

        return size;
    }

    private static int Length(int length, bool compact, bool wide) =>
        compact ? UnsignedVarInt((uint)(length + 1)) : wide ? 4 : 2;

    public static int String(string? value, bool compact)
    {
        if (value is null)
        {
            return Length(-1, compact, wide: false);
        }

        var length = Encoding.UTF8.GetByteCount(value);
        return Length(length, compact, wide: false) + length;
    }

    public static int Bytes(int length, bool compact) => Length(length, compact, wide: true) + length;

    public static int NullableBytes(byte[]? value, bool compact) =>
        value is null ? Length(-1, compact, wide: true) : Bytes(value.Length, compact);

    public static int Records(ReadOnlyMemory<byte>? value, bool compact) =>
        value is null ? Length(-1, compact, wide: true) : Bytes(value.Value.Length, compact);

    public static int ArrayLength(int count, bool compact) => Length(count, compact, wide: true);
}
