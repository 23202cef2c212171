using System.Buffers.Binary;
using Osprey.Protocol.Records.Compression;

namespace Osprey.Protocol.Records;

/// <summary>
/// A view of one record batch (magic 2) in a buffer: its parsed header and its exact bytes. Parsing reads the
/// header only; the CRC is checked by <see cref="VerifyCrc"/> and the records are read by <see cref="GetRecords()"/>.
/// </summary>
public readonly ref struct RecordBatch
{
    private RecordBatch(ReadOnlySpan<byte> bytes, RecordBatchHeader header)
    {
        Bytes = bytes;
        Header = header;
    }

    public RecordBatchHeader Header { get; }

    /// <summary>The whole batch, exactly <see cref="RecordBatchHeader.TotalSize"/> bytes.</summary>
    public ReadOnlySpan<byte> Bytes { get; }

    /// <summary>The bytes after the header: the records, compressed as a whole when the batch is compressed.</summary>
    public ReadOnlySpan<byte> RecordsSection => Bytes[RecordBatchHeader.Size..];

    /// <summary>Parses the batch at the start of <paramref name="buffer"/>, which must hold all of it.</summary>
    public static RecordBatch Parse(ReadOnlySpan<byte> buffer)
    {
        var header = RecordBatchHeader.Parse(buffer);
        return new RecordBatch(buffer[..header.TotalSize], header);
    }

    /// <summary>
    /// Iterates the batches of a records field (several batches may be concatenated). A fetch response may end
    /// with a partial batch, cut at the fetch size limit: with <paramref name="allowTrailingPartialBatch"/> it ends
    /// the iteration quietly (see <see cref="RecordBatchEnumerator.BytesConsumed"/>); otherwise, as for produce
    /// requests, it is CORRUPT_MESSAGE.
    /// </summary>
    public static RecordBatchEnumerator Enumerate(ReadOnlySpan<byte> records, bool allowTrailingPartialBatch = false) =>
        new(records, allowTrailingPartialBatch);

    internal static RecordBatch Create(ReadOnlySpan<byte> bytes, RecordBatchHeader header) => new(bytes, header);

    public uint ComputeCrc() => Crc32C.Compute(Bytes[RecordBatchHeader.CrcCoverageStart..]);

    public bool VerifyCrc() => ComputeCrc() == Header.Crc;

    /// <summary>Throws CORRUPT_MESSAGE when the stored CRC does not match the contents.</summary>
    public void EnsureValidCrc()
    {
        var computed = ComputeCrc();
        if (computed != Header.Crc)
        {
            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage,
                $"Record batch at base offset {Header.BaseOffset} is corrupt: stored CRC 0x{Header.Crc:X8}, computed 0x{computed:X8}.");
        }
    }

    /// <summary>The records of an uncompressed batch, read in place.</summary>
    /// <exception cref="InvalidOperationException">The batch is compressed: use the overload with a buffer.</exception>
    public RecordEnumerator GetRecords()
    {
        if (Header.Compression != CompressionType.None)
        {
            throw new InvalidOperationException(
                $"The batch is compressed with {Header.Compression}; pass a buffer to decompress its records into.");
        }

        return new RecordEnumerator(RecordsSection, Header);
    }

    /// <summary>
    /// The records of any batch. A compressed batch is decompressed into <paramref name="decompressionBuffer"/>
    /// (cleared first; the records point into it, so keep it unchanged while iterating); more than
    /// <paramref name="maxDecompressedSize"/> bytes is CORRUPT_MESSAGE. An uncompressed batch is read in place.
    /// </summary>
    public RecordEnumerator GetRecords(
        PooledBufferWriter decompressionBuffer,
        int maxDecompressedSize = RecordCompression.DefaultMaxDecompressedSize)
    {
        ArgumentNullException.ThrowIfNull(decompressionBuffer);
        if (Header.Compression == CompressionType.None)
        {
            return new RecordEnumerator(RecordsSection, Header);
        }

        decompressionBuffer.Clear();
        RecordCompression.Decompress(Header.Compression, RecordsSection, decompressionBuffer, maxDecompressedSize);
        return new RecordEnumerator(decompressionBuffer.WrittenSpan, Header);
    }

    /// <summary>Sets the base offset (not covered by the CRC): how the log assigns offsets on append.</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset)
    {
        _ = RecordBatchHeader.Parse(batch);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.BaseOffsetOffset..], baseOffset);
    }

    /// <summary>Sets the partition leader epoch (not covered by the CRC).</summary>
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int partitionLeaderEpoch)
    {
        _ = RecordBatchHeader.Parse(batch);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.PartitionLeaderEpochOffset..], partitionLeaderEpoch);
    }

    /// <summary>
    /// Sets the timestamp type and maxTimestamp, as the broker does for LogAppendTime topics, and recomputes the
    /// CRC since both are covered by it. Nothing changes (and no CRC is computed) when they already match.
    /// </summary>
    public static void SetMaxTimestamp(Span<byte> batch, TimestampType timestampType, long maxTimestamp)
    {
        var header = RecordBatchHeader.Parse(batch);
        if (header.TimestampType == timestampType && header.MaxTimestamp == maxTimestamp)
        {
            return;
        }

        var attributes = RecordBatchHeader.ComposeAttributes(
            header.Compression, timestampType, header.IsTransactional, header.IsControlBatch, header.HasDeleteHorizonMs);
        // Keep the unused high bits as they were.
        attributes |= (short)(header.Attributes & ~0x7F);
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..], attributes);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..], maxTimestamp);
        WriteCrc(batch[..header.TotalSize]);
    }

    /// <summary>Recomputes and stores the CRC of the batch at the start of <paramref name="batch"/>.</summary>
    public static void UpdateCrc(Span<byte> batch)
    {
        var header = RecordBatchHeader.Parse(batch);
        WriteCrc(batch[..header.TotalSize]);
    }

    internal static void WriteCrc(Span<byte> exactBatch) =>
        BinaryPrimitives.WriteUInt32BigEndian(
            exactBatch[RecordBatchHeader.CrcOffset..],
            Crc32C.Compute(exactBatch[RecordBatchHeader.CrcCoverageStart..]));
}

/// <summary>Iterates the record batches of a records field. See <see cref="RecordBatch.Enumerate"/>.</summary>
public ref struct RecordBatchEnumerator
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly bool _allowTrailingPartialBatch;
    private int _position;

    internal RecordBatchEnumerator(ReadOnlySpan<byte> buffer, bool allowTrailingPartialBatch)
    {
        _buffer = buffer;
        _allowTrailingPartialBatch = allowTrailingPartialBatch;
        _position = 0;
        CurrentPosition = 0;
        Current = default;
    }

    public RecordBatch Current { get; private set; }

    /// <summary>Where <see cref="Current"/> starts in the buffer, to slice the same bytes from a Memory.</summary>
    public int CurrentPosition { get; private set; }

    /// <summary>Bytes of complete batches so far; once iteration ends, a partial batch (if any) starts here.</summary>
    public readonly int BytesConsumed => _position;

    public readonly RecordBatchEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        var rest = _buffer[_position..];
        if (rest.IsEmpty)
        {
            return false;
        }

        if (RecordBatchHeader.Probe(rest, out var totalSize) == RecordBatchHeader.ProbeResult.Incomplete)
        {
            if (_allowTrailingPartialBatch)
            {
                return false;
            }

            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage,
                $"Records end with a partial batch: {rest.Length} bytes at position {_position}"
                + (totalSize > 0 ? $" of a batch declaring {totalSize}." : "."));
        }

        var header = RecordBatchHeader.Parse(rest);
        Current = RecordBatch.Create(rest[..header.TotalSize], header);
        CurrentPosition = _position;
        _position += header.TotalSize;
        return true;
    }
}
