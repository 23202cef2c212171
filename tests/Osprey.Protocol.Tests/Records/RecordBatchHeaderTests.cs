using System.Buffers.Binary;
using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class RecordBatchHeaderTests
{
    /// <summary>A header with every field distinct, laid out field by field from the spec, and no records.</summary>
    private static byte[] HandBuiltHeader(sbyte magic = 2, int batchLength = 49, short attributes = 0b0111_1011, int recordCount = 0)
    {
        var b = new byte[61];
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(0), 0x0102030405060708);     // baseOffset
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), batchLength);            // batchLength
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), 77);                    // partitionLeaderEpoch
        b[16] = (byte)magic;                                                       // magic
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(17), 0xDEADBEEF);           // crc
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(21), attributes);            // attributes
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(23), 41);                    // lastOffsetDelta
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(27), 1_700_000_000_000);     // baseTimestamp
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(35), 1_700_000_000_999);     // maxTimestamp
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(43), 123_456_789_012);       // producerId
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(51), 5);                     // producerEpoch
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(53), 1000);                  // baseSequence
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(57), recordCount);           // recordCount
        return b;
    }

    [Fact]
    public void ParsesEveryFieldFromAHandBuiltHeader()
    {
        // attributes 0b0111_1011: bits 0-2 = 011 (lz4), bit 3 LogAppendTime, 4 transactional, 5 control, 6 delete horizon.
        var header = RecordBatchHeader.Parse(HandBuiltHeader());

        Assert.Equal(0x0102030405060708, header.BaseOffset);
        Assert.Equal(49, header.BatchLength);
        Assert.Equal(77, header.PartitionLeaderEpoch);
        Assert.Equal(2, header.Magic);
        Assert.Equal(0xDEADBEEFu, header.Crc);
        Assert.Equal(0b0111_1011, header.Attributes);
        Assert.Equal(41, header.LastOffsetDelta);
        Assert.Equal(1_700_000_000_000, header.BaseTimestamp);
        Assert.Equal(1_700_000_000_999, header.MaxTimestamp);
        Assert.Equal(123_456_789_012, header.ProducerId);
        Assert.Equal(5, header.ProducerEpoch);
        Assert.Equal(1000, header.BaseSequence);
        Assert.Equal(0, header.RecordCount);

        Assert.Equal(CompressionType.Lz4, header.Compression);
        Assert.Equal(TimestampType.LogAppendTime, header.TimestampType);
        Assert.True(header.IsTransactional);
        Assert.True(header.IsControlBatch);
        Assert.True(header.HasDeleteHorizonMs);
        Assert.Equal(1_700_000_000_000, header.DeleteHorizonMs);
        Assert.Equal(61, header.TotalSize);
        Assert.Equal(0x0102030405060708 + 41, header.LastOffset);
        Assert.Equal(1041, header.LastSequence);
    }

    [Fact]
    public void AttributesWithNoFlagsMeanCreateTimeAndPlainBatch()
    {
        var header = RecordBatchHeader.Parse(HandBuiltHeader(attributes: 2));
        Assert.Equal(CompressionType.Snappy, header.Compression);
        Assert.Equal(TimestampType.CreateTime, header.TimestampType);
        Assert.False(header.IsTransactional);
        Assert.False(header.IsControlBatch);
        Assert.False(header.HasDeleteHorizonMs);
        Assert.Null(header.DeleteHorizonMs);
    }

    [Fact]
    public void WriteToProducesTheSameBytes()
    {
        var bytes = HandBuiltHeader();
        var written = new byte[61];
        RecordBatchHeader.Parse(bytes).WriteTo(written);
        Assert.Equal(bytes, written);
    }

    [Theory]
    [InlineData(CompressionType.Zstd, TimestampType.CreateTime, false, false, false, 0x04)]
    [InlineData(CompressionType.None, TimestampType.LogAppendTime, false, false, false, 0x08)]
    [InlineData(CompressionType.Gzip, TimestampType.CreateTime, true, false, false, 0x11)]
    [InlineData(CompressionType.None, TimestampType.CreateTime, true, true, false, 0x30)]
    [InlineData(CompressionType.None, TimestampType.CreateTime, false, false, true, 0x40)]
    public void ComposesAttributes(CompressionType compression, TimestampType type, bool transactional, bool control, bool deleteHorizon, short expected) =>
        Assert.Equal(expected, RecordBatchHeader.ComposeAttributes(compression, type, transactional, control, deleteHorizon));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void OldMessageFormatsAreRefused(sbyte magic)
    {
        var e = Assert.Throws<KafkaProtocolException>(() => RecordBatchHeader.Parse(HandBuiltHeader(magic)));
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, e.ErrorCode);
        Assert.Contains($"magic {magic}", e.Message, StringComparison.Ordinal);
        Assert.Contains("Kafka 4 removed it", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OldMessageFormatIsRefusedEvenWhenItsLengthIsTooSmallForV2()
    {
        // A v0 message set entry: offset, size 14+, crc, magic 0, ... far shorter than a v2 header.
        var v0 = new byte[26];
        WriteInt32(v0, 8, 14);
        var e = Assert.Throws<KafkaProtocolException>(() => RecordBatch.Parse(v0));
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, e.ErrorCode);
    }

    [Fact]
    public void UnknownMagicIsCorrupt() => AssertCorrupt(() => RecordBatchHeader.Parse(HandBuiltHeader(magic: 3)));

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(17)]
    [InlineData(60)]
    public void TruncatedHeaderIsCorrupt(int length) =>
        AssertCorrupt(() => RecordBatchHeader.Parse(HandBuiltHeader().AsSpan(0, length)));

    [Theory]
    [InlineData(48)]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void BatchLengthBelowTheHeaderSizeIsCorrupt(int batchLength)
    {
        var e = AssertCorrupt(() => RecordBatchHeader.Parse(HandBuiltHeader(batchLength: batchLength)));
        Assert.Contains("smaller than", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(50)]
    [InlineData(int.MaxValue)]
    public void BatchLengthBeyondTheBufferIsCorrupt(int batchLength)
    {
        var e = AssertCorrupt(() => RecordBatchHeader.Parse(HandBuiltHeader(batchLength: batchLength)));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeRecordCountIsCorrupt() => AssertCorrupt(() => RecordBatchHeader.Parse(HandBuiltHeader(recordCount: -1)));

    [Theory]
    [InlineData(5)]
    [InlineData(7)]
    public void UnknownCodecIsCorrupt(short codec) => AssertCorrupt(() => RecordBatchHeader.Parse(HandBuiltHeader(attributes: codec)));

    [Fact]
    public void ParseReadsOnlyTheHeaderEvenWhenTheRecordsAreGarbage()
    {
        var batch = WrapRecords([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], recordCount: 3, CompressionType.Zstd);
        var parsed = RecordBatch.Parse(batch);
        Assert.Equal(3, parsed.Header.RecordCount);
        Assert.Equal(7, parsed.RecordsSection.Length);
        Assert.True(parsed.VerifyCrc());
    }

    [Fact]
    public void BytesAfterTheBatchAreNotPartOfIt()
    {
        var batch = Build([new TestRecord(1, "k", "v")]);
        var parsed = RecordBatch.Parse([.. batch, 1, 2, 3]);
        Assert.Equal(batch.Length, parsed.Bytes.Length);
    }

    [Theory]
    [InlineData(int.MaxValue - 2, 5, 2)]
    [InlineData(int.MaxValue, 1, 0)]
    [InlineData(-1, 5, -1)]
    [InlineData(10, 5, 15)]
    public void LastSequenceWrapsAtIntMax(int baseSequence, int lastOffsetDelta, int expected) =>
        Assert.Equal(expected, new RecordBatchHeader { BaseSequence = baseSequence, LastOffsetDelta = lastOffsetDelta }.LastSequence);

    [Fact]
    public void CrcDetectsACorruptedByte()
    {
        var batch = Build([new TestRecord(1, "key", "value")]);
        Assert.True(RecordBatch.Parse(batch).VerifyCrc());
        RecordBatch.Parse(batch).EnsureValidCrc();

        batch[^2] ^= 0x20;
        Assert.False(RecordBatch.Parse(batch).VerifyCrc());
        var e = AssertCorrupt(() => RecordBatch.Parse(batch).EnsureValidCrc());
        Assert.Contains("CRC", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CrcCoversAttributesButNotBaseOffsetOrLeaderEpoch()
    {
        var batch = Build([new TestRecord(1, "key", "value")]);
        RecordBatch.SetBaseOffset(batch, 987_654_321);
        RecordBatch.SetPartitionLeaderEpoch(batch, 42);
        var parsed = RecordBatch.Parse(batch);
        Assert.Equal(987_654_321, parsed.Header.BaseOffset);
        Assert.Equal(42, parsed.Header.PartitionLeaderEpoch);
        Assert.True(parsed.VerifyCrc());
        Assert.Equal(987_654_321, ReadAll(batch)[0].Offset);

        batch[RecordBatchHeader.Size - 40] ^= 1; // inside attributes..recordCount
        Assert.False(RecordBatch.Parse(batch).VerifyCrc());
    }

    [Fact]
    public void SetMaxTimestampSwitchesToLogAppendTimeAndKeepsTheCrcValid()
    {
        var batch = Build([new TestRecord(100, "a", "1"), new TestRecord(250, "b", "2")], CompressionType.Gzip, b => b.IsTransactional = true);
        Assert.Equal(250, RecordBatch.Parse(batch).Header.MaxTimestamp);

        RecordBatch.SetMaxTimestamp(batch, TimestampType.LogAppendTime, 9_999);

        var parsed = RecordBatch.Parse(batch);
        Assert.True(parsed.VerifyCrc());
        Assert.Equal(TimestampType.LogAppendTime, parsed.Header.TimestampType);
        Assert.Equal(9_999, parsed.Header.MaxTimestamp);
        Assert.Equal(CompressionType.Gzip, parsed.Header.Compression);
        Assert.True(parsed.Header.IsTransactional);
        Assert.All(ReadAll(batch), r => Assert.Equal(9_999, r.Timestamp));
    }

    [Fact]
    public void SetMaxTimestampWithoutChangeLeavesTheBytesAlone()
    {
        var batch = Build([new TestRecord(100, "a", "1")]);
        var before = (byte[])batch.Clone();
        RecordBatch.SetMaxTimestamp(batch, TimestampType.CreateTime, 100);
        Assert.Equal(before, batch);
    }

    [Fact]
    public void UpdateCrcRepairsTheChecksum()
    {
        var batch = Build([new TestRecord(100, "a", "1")]);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(53), 7); // baseSequence, covered by the CRC
        Assert.False(RecordBatch.Parse(batch).VerifyCrc());
        RecordBatch.UpdateCrc(batch);
        Assert.True(RecordBatch.Parse(batch).VerifyCrc());
        Assert.Equal(7, RecordBatch.Parse(batch).Header.BaseSequence);
    }
}
