namespace Osprey.Protocol.Records;

/// <summary>
/// Iterates the records of an uncompressed records section without allocating. Every length and count is checked
/// against the bytes that remain; each record must use exactly its declared length, and the section must hold
/// exactly the batch's recordCount records. Anything else is CORRUPT_MESSAGE.
/// </summary>
public ref struct RecordEnumerator
{
    private readonly ReadOnlySpan<byte> _records;
    private readonly long _baseOffset;
    private readonly long _baseTimestamp;
    private readonly long? _logAppendTime;
    private readonly int _count;
    private int _position;
    private int _index;

    /// <param name="records">The records after the batch header, already decompressed.</param>
    /// <param name="header">The batch they belong to: offsets, timestamps and the record count come from it.</param>
    public RecordEnumerator(ReadOnlySpan<byte> records, RecordBatchHeader header)
    {
        _records = records;
        _baseOffset = header.BaseOffset;
        _baseTimestamp = header.BaseTimestamp;
        _logAppendTime = header.TimestampType == TimestampType.LogAppendTime ? header.MaxTimestamp : null;
        _count = header.RecordCount;
        _position = 0;
        _index = 0;
        Current = default;
    }

    public Record Current { get; private set; }

    public readonly RecordEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        var remaining = _records.Length - _position;
        if (_index == _count)
        {
            if (remaining != 0)
            {
                RecordCursor.ThrowCorrupt(
                    $"Record batch at base offset {_baseOffset} declares {_count} records but {remaining} bytes follow the last one.");
            }

            return false;
        }

        if (remaining == 0)
        {
            RecordCursor.ThrowCorrupt(
                $"Record batch at base offset {_baseOffset} declares {_count} records but holds only {_index}.");
        }

        var outer = new RecordCursor(_records[_position..]);
        var length = outer.ReadVarInt("record length");
        if ((uint)length > (uint)outer.Remaining)
        {
            RecordCursor.ThrowCorrupt(
                $"Record {_index} of the batch at base offset {_baseOffset} declares {length} bytes but {outer.Remaining} remain.");
        }

        var body = _records.Slice(_position + outer.Position, length);
        Current = Read(body, length);
        _position += outer.Position + length;
        _index++;
        return true;
    }

    private readonly Record Read(ReadOnlySpan<byte> body, int length)
    {
        var cursor = new RecordCursor(body);
        var attributes = (sbyte)cursor.ReadByte("record attributes");
        var timestampDelta = cursor.ReadVarLong("timestamp delta");
        var offsetDelta = cursor.ReadVarInt("offset delta");
        var key = cursor.ReadNullableBytes("key", out var isKeyNull);
        var value = cursor.ReadNullableBytes("value", out var isValueNull);

        var headerCount = cursor.ReadVarInt("header count");
        // Each header takes at least two bytes (two varint lengths).
        if (headerCount < 0 || headerCount > cursor.Remaining / 2)
        {
            RecordCursor.ThrowCorrupt(
                $"Record {_index} of the batch at base offset {_baseOffset} declares {headerCount} headers in {cursor.Remaining} bytes.");
        }

        var headersStart = cursor.Position;
        for (var i = 0; i < headerCount; i++)
        {
            var keyLength = cursor.ReadVarInt("header key length");
            if (keyLength < 0)
            {
                RecordCursor.ThrowCorrupt(
                    $"Record {_index} of the batch at base offset {_baseOffset} has a header key of length {keyLength}; header keys cannot be null.");
            }

            _ = cursor.ReadBytes(keyLength, "header key");
            _ = cursor.ReadNullableBytes("header value", out _);
        }

        if (cursor.Remaining != 0)
        {
            RecordCursor.ThrowCorrupt(
                $"Record {_index} of the batch at base offset {_baseOffset} declares {length} bytes but its fields use {cursor.Position}.");
        }

        return new Record(
            _baseOffset + offsetDelta,
            _logAppendTime ?? _baseTimestamp + timestampDelta,
            offsetDelta,
            timestampDelta,
            attributes,
            length,
            key,
            isKeyNull,
            value,
            isValueNull,
            body[headersStart..],
            headerCount);
    }
}
