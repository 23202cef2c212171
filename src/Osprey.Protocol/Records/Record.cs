using System.Text;

namespace Osprey.Protocol.Records;

/// <summary>
/// One record of a batch, as a view into the batch's (uncompressed) bytes. Valid while those bytes are.
/// </summary>
public readonly ref struct Record
{
    private readonly ReadOnlySpan<byte> _headers;

    internal Record(
        long offset,
        long timestamp,
        int offsetDelta,
        long timestampDelta,
        sbyte attributes,
        int sizeInBytes,
        ReadOnlySpan<byte> key,
        bool isKeyNull,
        ReadOnlySpan<byte> value,
        bool isValueNull,
        ReadOnlySpan<byte> headers,
        int headerCount)
    {
        Offset = offset;
        Timestamp = timestamp;
        OffsetDelta = offsetDelta;
        TimestampDelta = timestampDelta;
        Attributes = attributes;
        SizeInBytes = sizeInBytes;
        Key = key;
        IsKeyNull = isKeyNull;
        Value = value;
        IsValueNull = isValueNull;
        _headers = headers;
        HeaderCount = headerCount;
    }

    /// <summary>baseOffset + offsetDelta.</summary>
    public long Offset { get; }

    /// <summary>baseTimestamp + timestampDelta, or the batch's maxTimestamp when it uses LogAppendTime.</summary>
    public long Timestamp { get; }

    public int OffsetDelta { get; }

    public long TimestampDelta { get; }

    /// <summary>Unused by Kafka so far; carried through as read.</summary>
    public sbyte Attributes { get; }

    /// <summary>The record's length field: its bytes after that varint.</summary>
    public int SizeInBytes { get; }

    /// <summary>Empty when <see cref="IsKeyNull"/>.</summary>
    public ReadOnlySpan<byte> Key { get; }

    public bool IsKeyNull { get; }

    /// <summary>Empty when <see cref="IsValueNull"/> (a tombstone).</summary>
    public ReadOnlySpan<byte> Value { get; }

    public bool IsValueNull { get; }

    public int HeaderCount { get; }

    public RecordHeaderEnumerator Headers => new(_headers, HeaderCount);

    /// <summary>The encoded headers after the header count, to copy a record without re-encoding them.</summary>
    internal ReadOnlySpan<byte> HeaderBytes => _headers;
}

/// <summary>One header of a record, as a view into the record's bytes.</summary>
public readonly ref struct RecordHeader
{
    internal RecordHeader(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool isValueNull)
    {
        Key = key;
        Value = value;
        IsValueNull = isValueNull;
    }

    /// <summary>The key's UTF-8 bytes. Not validated: decoding is up to whoever needs it as text.</summary>
    public ReadOnlySpan<byte> Key { get; }

    public ReadOnlySpan<byte> Value { get; }

    public bool IsValueNull { get; }

    /// <summary>The key as a string; invalid UTF-8 becomes U+FFFD, as Java clients decode it.</summary>
    public string GetKeyString() => Encoding.UTF8.GetString(Key);
}

/// <summary>Iterates the headers of one record. They were validated when the record was read.</summary>
public ref struct RecordHeaderEnumerator
{
    private RecordCursor _cursor;
    private readonly int _count;
    private int _index;

    internal RecordHeaderEnumerator(ReadOnlySpan<byte> headers, int count)
    {
        _cursor = new RecordCursor(headers);
        _count = count;
        _index = 0;
        Current = default;
    }

    public readonly int Count => _count;

    public RecordHeader Current { get; private set; }

    public readonly RecordHeaderEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_index == _count)
        {
            return false;
        }

        _index++;
        var key = _cursor.ReadNullableBytes("header key", out _);
        var value = _cursor.ReadNullableBytes("header value", out var isValueNull);
        Current = new RecordHeader(key, value, isValueNull);
        return true;
    }
}
