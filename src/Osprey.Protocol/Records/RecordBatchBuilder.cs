using System.Buffers;
using System.Text;
using Osprey.Protocol.Primitives;
using Osprey.Protocol.Records.Compression;

namespace Osprey.Protocol.Records;

/// <summary>
/// Builds one record batch (magic 2). Records are encoded as they are appended into a pooled buffer, behind room
/// for the header; <see cref="Build"/> compresses them if asked, fills in the header and CRC, and returns the batch
/// without copying it. Batch-level settings may change until <see cref="Build"/>, except
/// <see cref="DeleteHorizonMs"/>, which fixes the base timestamp and so must precede the first record.
/// Reuse a builder with <see cref="Reset"/>; dispose it to return its buffers to the pool.
/// </summary>
public sealed class RecordBatchBuilder : IDisposable
{
    private readonly PooledBufferWriter _buffer;
    private PooledBufferWriter? _compressed;
    private int _recordCount;
    private int _lastOffsetDelta = -1;
    private int? _finalLastOffsetDelta;
    private long _baseTimestamp;
    private long _maxTimestamp;
    private long? _deleteHorizonMs;

    public RecordBatchBuilder(CompressionType compression = CompressionType.None, int? compressionLevel = null)
    {
        Compression = compression;
        CompressionLevel = compressionLevel;
        _buffer = new PooledBufferWriter();
        ReserveHeader(_buffer);
    }

    public CompressionType Compression { get; set; }

    /// <summary>The codec's level as Kafka configures it; null for Kafka's default.</summary>
    public int? CompressionLevel { get; set; }

    public long BaseOffset { get; set; }

    public int PartitionLeaderEpoch { get; set; } = RecordBatchHeader.NoPartitionLeaderEpoch;

    public long ProducerId { get; set; } = RecordBatchHeader.NoProducerId;

    public short ProducerEpoch { get; set; } = RecordBatchHeader.NoProducerEpoch;

    public int BaseSequence { get; set; } = RecordBatchHeader.NoSequence;

    public bool IsTransactional { get; set; }

    public bool IsControlBatch { get; set; }

    /// <summary>When set, the batch uses LogAppendTime and this becomes its maxTimestamp.</summary>
    public long? LogAppendTime { get; set; }

    public TimestampType TimestampType => LogAppendTime is null ? TimestampType.CreateTime : TimestampType.LogAppendTime;

    /// <summary>Compaction's delete horizon: it becomes the base timestamp, so set it before the first record.</summary>
    public long? DeleteHorizonMs
    {
        get => _deleteHorizonMs;
        set
        {
            if (_recordCount > 0)
            {
                throw new InvalidOperationException("The delete horizon is the base timestamp: set it before appending records.");
            }

            _deleteHorizonMs = value;
        }
    }

    public int RecordCount => _recordCount;

    /// <summary>
    /// The batch's lastOffsetDelta: by default the last record's offset delta. Compaction sets it to the original
    /// batch's value so the batch keeps covering the same offsets and the producer's last sequence survives. Must
    /// not be below the last record's delta when the batch is built; <see cref="Reset"/> clears it.
    /// </summary>
    public int? LastOffsetDelta
    {
        get => _finalLastOffsetDelta;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value ?? 0);
            _finalLastOffsetDelta = value;
        }
    }

    /// <summary>The size of the batch so far, before compression: what a producer compares with batch.size.</summary>
    public int UncompressedSizeInBytes => _buffer.WrittenCount;

    public void Append(long timestamp, byte[]? key, byte[]? value, ReadOnlySpan<Header> headers = default) =>
        Append(timestamp, key, key is null, value, value is null, headers);

    /// <summary>Appends a record with the next offset delta. Spans cannot be null, hence the null flags.</summary>
    public void Append(
        long timestamp,
        ReadOnlySpan<byte> key,
        bool keyIsNull,
        ReadOnlySpan<byte> value,
        bool valueIsNull,
        ReadOnlySpan<Header> headers = default)
    {
        if (_lastOffsetDelta == int.MaxValue)
        {
            throw new InvalidOperationException("A record batch cannot hold more records.");
        }

        long headersSize = 0;
        foreach (var header in headers)
        {
            ArgumentNullException.ThrowIfNull(header.Key, "header key");
            var keyLength = Encoding.UTF8.GetByteCount(header.Key);
            headersSize += KafkaSize.VarInt(keyLength) + keyLength + NullableSize(header.Value is null, header.Value?.Length ?? 0);
        }

        var span = BeginRecord(_lastOffsetDelta + 1, timestamp, 0, key, keyIsNull, value, valueIsNull, headers.Length, headersSize, out var position);
        foreach (var header in headers)
        {
            var keyLength = Encoding.UTF8.GetByteCount(header.Key);
            position = WriteVarInt(span, position, keyLength);
            position += Encoding.UTF8.GetBytes(header.Key, span[position..]);
            position = WriteNullable(span, position, header.Value, header.Value is null);
        }

        EndRecord(position, timestamp);
    }

    /// <summary>
    /// Appends a record read from another batch, keeping its offset (its delta is taken from
    /// <see cref="BaseOffset"/>, so offsets may leave gaps but must increase), timestamp, attributes, key, value and
    /// headers byte for byte. This is how compaction rewrites a batch with only the records it keeps.
    /// </summary>
    public void Append(in Record record)
    {
        var delta = record.Offset - BaseOffset;
        if (delta <= _lastOffsetDelta || delta > int.MaxValue)
        {
            throw new ArgumentException(
                $"Record offset {record.Offset} does not follow offset delta {_lastOffsetDelta} of a batch based at {BaseOffset}.", nameof(record));
        }

        var headers = record.HeaderBytes;
        var span = BeginRecord(
            (int)delta, record.Timestamp, record.Attributes, record.Key, record.IsKeyNull, record.Value, record.IsValueNull, record.HeaderCount, headers.Length, out var position);
        headers.CopyTo(span[position..]);
        EndRecord(position + headers.Length, record.Timestamp);
    }

    /// <summary>
    /// Checks the record's size, reserves room for it and writes everything before its headers; returns the span
    /// to write the headers into at <paramref name="position"/>.
    /// </summary>
    private Span<byte> BeginRecord(
        int offsetDelta,
        long timestamp,
        sbyte attributes,
        ReadOnlySpan<byte> key,
        bool keyIsNull,
        ReadOnlySpan<byte> value,
        bool valueIsNull,
        int headerCount,
        long headersSize,
        out int position)
    {
        if (_recordCount == int.MaxValue)
        {
            throw new InvalidOperationException("A record batch cannot hold more records.");
        }

        if (_recordCount == 0)
        {
            _baseTimestamp = _deleteHorizonMs ?? timestamp;
            _maxTimestamp = timestamp;
        }

        var timestampDelta = timestamp - _baseTimestamp;
        var bodySize = 1 + KafkaSize.VarLong(timestampDelta) + KafkaSize.VarInt(offsetDelta)
            + NullableSize(keyIsNull, key.Length) + NullableSize(valueIsNull, value.Length)
            + KafkaSize.VarInt(headerCount) + headersSize;

        // Leave room for the length varint and the header within one array.
        if (bodySize > Array.MaxLength - _buffer.WrittenCount - 5)
        {
            throw new ArgumentException($"A record of {bodySize} bytes does not fit in a batch.");
        }

        var size = (int)bodySize;
        var total = KafkaSize.VarInt(size) + size;
        var span = _buffer.GetSpan(total);
        position = WriteVarInt(span, 0, size);
        span[position++] = (byte)attributes;
        position = WriteVarLong(span, position, timestampDelta);
        position = WriteVarInt(span, position, offsetDelta);
        position = WriteNullable(span, position, key, keyIsNull);
        position = WriteNullable(span, position, value, valueIsNull);
        position = WriteVarInt(span, position, headerCount);
        _lastOffsetDelta = offsetDelta;
        return span;
    }

    private void EndRecord(int position, long timestamp)
    {
        _buffer.Advance(position);
        _recordCount++;
        _maxTimestamp = Math.Max(_maxTimestamp, timestamp);
    }

    /// <summary>
    /// Finishes the batch and returns it. The memory belongs to the builder: it stays valid until the next
    /// <see cref="Append(long, byte[], byte[], ReadOnlySpan{Header})"/>, <see cref="Build"/>,
    /// <see cref="Reset"/> or <see cref="Dispose"/>.
    /// </summary>
    public ReadOnlyMemory<byte> Build()
    {
        if (_recordCount == 0)
        {
            throw new InvalidOperationException("A record batch needs at least one record.");
        }

        if (_finalLastOffsetDelta < _lastOffsetDelta)
        {
            throw new InvalidOperationException(
                $"The last offset delta {_finalLastOffsetDelta} is below the last record's offset delta {_lastOffsetDelta}.");
        }

        Memory<byte> batch;
        if (Compression == CompressionType.None)
        {
            batch = _buffer.WrittenMemoryForUpdate;
        }
        else
        {
            _compressed ??= new PooledBufferWriter();
            _compressed.Clear();
            ReserveHeader(_compressed);
            RecordCompression.Compress(Compression, _buffer.WrittenSpan[RecordBatchHeader.Size..], _compressed, CompressionLevel);
            batch = _compressed.WrittenMemoryForUpdate;
        }

        var header = new RecordBatchHeader
        {
            BaseOffset = BaseOffset,
            BatchLength = batch.Length - RecordBatchHeader.LogOverhead,
            PartitionLeaderEpoch = PartitionLeaderEpoch,
            Attributes = RecordBatchHeader.ComposeAttributes(
                Compression, TimestampType, IsTransactional, IsControlBatch, _deleteHorizonMs is not null),
            LastOffsetDelta = _finalLastOffsetDelta ?? _lastOffsetDelta,
            BaseTimestamp = _baseTimestamp,
            MaxTimestamp = LogAppendTime ?? _maxTimestamp,
            ProducerId = ProducerId,
            ProducerEpoch = ProducerEpoch,
            BaseSequence = BaseSequence,
            RecordCount = _recordCount,
        };
        header.WriteTo(batch.Span);
        RecordBatch.WriteCrc(batch.Span);
        return batch;
    }

    public byte[] ToArray() => Build().ToArray();

    public void WriteTo(IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var batch = Build().Span;
        batch.CopyTo(destination.GetSpan(batch.Length));
        destination.Advance(batch.Length);
    }

    /// <summary>Drops the records (and the delete horizon and last offset delta) to build another batch; other settings stay.</summary>
    /// <summary>
    /// Resets the builder to rewrite the batch <paramref name="header"/> describes: same base offset, leader
    /// epoch, producer id, epoch, base sequence and transactional flag (the codec and timestamps are the caller's).
    /// </summary>
    public void ResetFor(in RecordBatchHeader header)
    {
        Reset();
        BaseOffset = header.BaseOffset;
        PartitionLeaderEpoch = header.PartitionLeaderEpoch;
        ProducerId = header.ProducerId;
        ProducerEpoch = header.ProducerEpoch;
        BaseSequence = header.BaseSequence;
        IsTransactional = header.IsTransactional;
        IsControlBatch = false;
    }

    public void Reset()
    {
        _buffer.Clear();
        ReserveHeader(_buffer);
        _recordCount = 0;
        _lastOffsetDelta = -1;
        _finalLastOffsetDelta = null;
        _deleteHorizonMs = null;
    }

    public void Dispose()
    {
        _buffer.Dispose();
        _compressed?.Dispose();
    }

    private static void ReserveHeader(PooledBufferWriter buffer)
    {
        _ = buffer.GetSpan(RecordBatchHeader.Size);
        buffer.Advance(RecordBatchHeader.Size);
    }

    private static int NullableSize(bool isNull, int length) => isNull ? 1 : KafkaSize.VarInt(length) + length;

    private static int WriteNullable(Span<byte> span, int position, ReadOnlySpan<byte> bytes, bool isNull)
    {
        if (isNull)
        {
            return WriteVarInt(span, position, -1);
        }

        position = WriteVarInt(span, position, bytes.Length);
        bytes.CopyTo(span[position..]);
        return position + bytes.Length;
    }

    private static int WriteVarInt(Span<byte> span, int position, int value)
    {
        var raw = (uint)((value << 1) ^ (value >> 31));
        while (raw >= 0x80)
        {
            span[position++] = (byte)(raw | 0x80);
            raw >>= 7;
        }

        span[position++] = (byte)raw;
        return position;
    }

    private static int WriteVarLong(Span<byte> span, int position, long value)
    {
        var raw = (ulong)((value << 1) ^ (value >> 63));
        while (raw >= 0x80)
        {
            span[position++] = (byte)(raw | 0x80);
            raw >>= 7;
        }

        span[position++] = (byte)raw;
        return position;
    }
}
