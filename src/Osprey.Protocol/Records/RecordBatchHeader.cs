using System.Buffers.Binary;

namespace Osprey.Protocol.Records;

/// <summary>
/// The fixed 61-byte header of a record batch (magic 2), parsed without touching the records that follow.
/// </summary>
public readonly record struct RecordBatchHeader
{
    public const int Size = 61;

    /// <summary>baseOffset and batchLength: the bytes a batch has that batchLength does not count.</summary>
    public const int LogOverhead = 12;

    /// <summary>The smallest legal batchLength: a header with no records.</summary>
    public const int MinBatchLength = Size - LogOverhead;

    public const sbyte CurrentMagic = 2;

    public const long NoProducerId = -1;
    public const short NoProducerEpoch = -1;
    public const int NoSequence = -1;

    /// <summary>A record or batch without a timestamp.</summary>
    public const long NoTimestamp = -1;
    public const int NoPartitionLeaderEpoch = -1;

    internal const int BaseOffsetOffset = 0;
    internal const int BatchLengthOffset = 8;
    internal const int PartitionLeaderEpochOffset = 12;
    internal const int MagicOffset = 16;
    internal const int CrcOffset = 17;
    internal const int AttributesOffset = 21;
    internal const int LastOffsetDeltaOffset = 23;
    internal const int BaseTimestampOffset = 27;
    internal const int MaxTimestampOffset = 35;
    internal const int ProducerIdOffset = 43;
    internal const int ProducerEpochOffset = 51;
    internal const int BaseSequenceOffset = 53;
    internal const int RecordCountOffset = 57;

    /// <summary>The CRC covers everything from the attributes to the end of the batch.</summary>
    internal const int CrcCoverageStart = AttributesOffset;

    private const short CompressionMask = 0x07;
    private const short LogAppendTimeFlag = 0x08;
    private const short TransactionalFlag = 0x10;
    private const short ControlFlag = 0x20;
    private const short DeleteHorizonFlag = 0x40;

    public long BaseOffset { get; init; }

    /// <summary>Bytes after the batchLength field: the whole batch is <see cref="TotalSize"/> bytes.</summary>
    public int BatchLength { get; init; }

    public int PartitionLeaderEpoch { get; init; }

    /// <summary>Always 2: <see cref="Parse"/> refuses every other message format.</summary>
    public sbyte Magic => CurrentMagic;

    public uint Crc { get; init; }

    public short Attributes { get; init; }

    public int LastOffsetDelta { get; init; }

    public long BaseTimestamp { get; init; }

    public long MaxTimestamp { get; init; }

    public long ProducerId { get; init; }

    public short ProducerEpoch { get; init; }

    public int BaseSequence { get; init; }

    public int RecordCount { get; init; }

    public CompressionType Compression => (CompressionType)(Attributes & CompressionMask);

    public TimestampType TimestampType =>
        (Attributes & LogAppendTimeFlag) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;

    public bool IsTransactional => (Attributes & TransactionalFlag) != 0;

    public bool IsControlBatch => (Attributes & ControlFlag) != 0;

    /// <summary>Set by compaction: baseTimestamp then holds the time after which tombstones may be removed.</summary>
    public bool HasDeleteHorizonMs => (Attributes & DeleteHorizonFlag) != 0;

    public long? DeleteHorizonMs => HasDeleteHorizonMs ? BaseTimestamp : null;

    public int TotalSize => BatchLength + LogOverhead;

    public long LastOffset => BaseOffset + LastOffsetDelta;

    public long NextOffset => LastOffset + 1;

    /// <summary>The sequence number of the last record; sequences wrap from int.MaxValue to 0.</summary>
    public int LastSequence =>
        BaseSequence == NoSequence ? NoSequence
        : BaseSequence > int.MaxValue - LastOffsetDelta ? LastOffsetDelta - (int.MaxValue - BaseSequence) - 1
        : BaseSequence + LastOffsetDelta;

    public static short ComposeAttributes(
        CompressionType compression,
        TimestampType timestampType = TimestampType.CreateTime,
        bool isTransactional = false,
        bool isControlBatch = false,
        bool hasDeleteHorizonMs = false)
    {
        var attributes = (int)compression & CompressionMask;
        if (timestampType == TimestampType.LogAppendTime)
        {
            attributes |= LogAppendTimeFlag;
        }

        if (isTransactional)
        {
            attributes |= TransactionalFlag;
        }

        if (isControlBatch)
        {
            attributes |= ControlFlag;
        }

        if (hasDeleteHorizonMs)
        {
            attributes |= DeleteHorizonFlag;
        }

        return (short)attributes;
    }

    //  Record batch v2, big-endian. Offsets are from the start of the batch.
    //
    //   0                   8            12                     16      17           21           23
    //  +-------------------+------------+----------------------+-------+------------+------------+
    //  | baseOffset int64  | batchLength| partitionLeaderEpoch | magic | crc uint32 | attributes |
    //  |                   | int32      | int32                | int8  | (CRC-32C)  | int16      |
    //  +-------------------+------------+----------------------+-------+------------+------------+
    //  23                 27                    35                    43                  51
    //  +------------------+---------------------+---------------------+-------------------+
    //  | lastOffsetDelta  | baseTimestamp int64 | maxTimestamp int64  | producerId int64  |
    //  | int32            |                     |                     |                   |
    //  +------------------+---------------------+---------------------+-------------------+
    //  51               53               57                61
    //  +----------------+----------------+-----------------+--------------------------------+
    //  | producerEpoch  | baseSequence   | recordCount     | records (compressed as a whole |
    //  | int16          | int32          | int32           | when attributes say so) ...    |
    //  +----------------+----------------+-----------------+--------------------------------+
    //
    //  batchLength counts the bytes after itself (total = batchLength + 12). The CRC covers bytes 21 to the end,
    //  so baseOffset and partitionLeaderEpoch can be rewritten by the broker without recomputing it.
    //  attributes: bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control, 6 delete horizon.

    /// <summary>
    /// Parses the header of the batch at the start of <paramref name="buffer"/>, which must hold the whole batch
    /// (it may hold more after it). Only the header is read; neither the CRC nor the records are checked.
    /// </summary>
    public static RecordBatchHeader Parse(ReadOnlySpan<byte> buffer)
    {
        if (Probe(buffer, out var totalSize) == ProbeResult.Incomplete)
        {
            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage,
                buffer.Length < LogOverhead
                    ? $"Record batch truncated: {buffer.Length} bytes cannot hold its {LogOverhead}-byte log overhead."
                    : $"Record batch truncated: it declares {totalSize} bytes but only {buffer.Length} are present.");
        }

        return ReadFields(buffer);
    }

    /// <summary>
    /// Parses a header from <paramref name="buffer"/>, which holds at least its 61 bytes but not necessarily the
    /// rest of the batch (a storage scan reads headers alone). Magic, length and fields are checked as by
    /// <see cref="Parse"/>; whether the batch's bytes exist is the caller's business.
    /// </summary>
    public static RecordBatchHeader ParseFixedPart(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length < Size)
        {
            throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"Record batch header truncated: {buffer.Length} of {Size} bytes.");
        }

        _ = Probe(buffer, out _);
        return ReadFields(buffer);
    }

    private static RecordBatchHeader ReadFields(ReadOnlySpan<byte> buffer)
    {
        var header = new RecordBatchHeader
        {
            BaseOffset = BinaryPrimitives.ReadInt64BigEndian(buffer[BaseOffsetOffset..]),
            BatchLength = BinaryPrimitives.ReadInt32BigEndian(buffer[BatchLengthOffset..]),
            PartitionLeaderEpoch = BinaryPrimitives.ReadInt32BigEndian(buffer[PartitionLeaderEpochOffset..]),
            Crc = BinaryPrimitives.ReadUInt32BigEndian(buffer[CrcOffset..]),
            Attributes = BinaryPrimitives.ReadInt16BigEndian(buffer[AttributesOffset..]),
            LastOffsetDelta = BinaryPrimitives.ReadInt32BigEndian(buffer[LastOffsetDeltaOffset..]),
            BaseTimestamp = BinaryPrimitives.ReadInt64BigEndian(buffer[BaseTimestampOffset..]),
            MaxTimestamp = BinaryPrimitives.ReadInt64BigEndian(buffer[MaxTimestampOffset..]),
            ProducerId = BinaryPrimitives.ReadInt64BigEndian(buffer[ProducerIdOffset..]),
            ProducerEpoch = BinaryPrimitives.ReadInt16BigEndian(buffer[ProducerEpochOffset..]),
            BaseSequence = BinaryPrimitives.ReadInt32BigEndian(buffer[BaseSequenceOffset..]),
            RecordCount = BinaryPrimitives.ReadInt32BigEndian(buffer[RecordCountOffset..]),
        };

        if ((int)header.Compression > (int)CompressionType.Zstd)
        {
            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage,
                $"Record batch at base offset {header.BaseOffset} uses unknown compression codec id {(int)header.Compression}.");
        }

        if (header.RecordCount < 0)
        {
            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage,
                $"Record batch at base offset {header.BaseOffset} has a negative record count {header.RecordCount}.");
        }

        return header;
    }

    internal enum ProbeResult
    {
        Complete,
        Incomplete,
    }

    /// <summary>
    /// Checks the log overhead and magic of the batch at the start of <paramref name="buffer"/>: whether it is
    /// all there, and its total size when known. Throws for anything that can never become a valid batch.
    /// </summary>
    internal static ProbeResult Probe(ReadOnlySpan<byte> buffer, out long totalSize)
    {
        totalSize = 0;
        if (buffer.Length < LogOverhead)
        {
            return ProbeResult.Incomplete;
        }

        var batchLength = BinaryPrimitives.ReadInt32BigEndian(buffer[BatchLengthOffset..]);

        // Magic sits at the same offset in every message format, so old formats get a precise answer.
        if (buffer.Length > MagicOffset)
        {
            var magic = (sbyte)buffer[MagicOffset];
            if (magic != CurrentMagic)
            {
                throw magic is 0 or 1
                    ? new KafkaProtocolException(
                        ErrorCode.UnsupportedForMessageFormat,
                        $"Message format v{magic} (magic {magic}) is not supported; Kafka 4 removed it. Only record batch v2 is accepted.")
                    : new KafkaProtocolException(ErrorCode.CorruptMessage, $"Record batch has unknown magic {magic}.");
            }
        }

        if (batchLength < MinBatchLength)
        {
            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage,
                $"Record batch length {batchLength} is smaller than the {MinBatchLength} bytes its header needs.");
        }

        totalSize = (long)batchLength + LogOverhead;
        return totalSize <= buffer.Length ? ProbeResult.Complete : ProbeResult.Incomplete;
    }

    /// <summary>Writes the 61 header bytes, with <see cref="Crc"/> as given (see <see cref="RecordBatch.UpdateCrc"/>).</summary>
    public void WriteTo(Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, Size);
        BinaryPrimitives.WriteInt64BigEndian(destination[BaseOffsetOffset..], BaseOffset);
        BinaryPrimitives.WriteInt32BigEndian(destination[BatchLengthOffset..], BatchLength);
        BinaryPrimitives.WriteInt32BigEndian(destination[PartitionLeaderEpochOffset..], PartitionLeaderEpoch);
        destination[MagicOffset] = (byte)CurrentMagic;
        BinaryPrimitives.WriteUInt32BigEndian(destination[CrcOffset..], Crc);
        BinaryPrimitives.WriteInt16BigEndian(destination[AttributesOffset..], Attributes);
        BinaryPrimitives.WriteInt32BigEndian(destination[LastOffsetDeltaOffset..], LastOffsetDelta);
        BinaryPrimitives.WriteInt64BigEndian(destination[BaseTimestampOffset..], BaseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(destination[MaxTimestampOffset..], MaxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(destination[ProducerIdOffset..], ProducerId);
        BinaryPrimitives.WriteInt16BigEndian(destination[ProducerEpochOffset..], ProducerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(destination[BaseSequenceOffset..], BaseSequence);
        BinaryPrimitives.WriteInt32BigEndian(destination[RecordCountOffset..], RecordCount);
    }
}
