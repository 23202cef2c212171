using Osprey.Protocol.Records;
using Osprey.Protocol.Records.Compression;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class MalformedRecordTests
{
    private static readonly byte[] GoodRecord = WithLength(RecordBody(0, 0, Utf8("k"), Utf8("v"), ("h", Utf8("x"))));

    private static KafkaProtocolException ReadCorrupt(byte[] batch, int maxDecompressedSize = 64 * 1024 * 1024) =>
        AssertCorrupt(() => ReadAll(batch, maxDecompressedSize));

    [Fact]
    public void AWellFormedHandMadeRecordReads()
    {
        var record = Assert.Single(ReadAll(WrapRecords(GoodRecord, 1)));
        Assert.Equal(Utf8("k"), record.Key);
        var header = Assert.Single(record.Headers);
        Assert.Equal("h", header.Key);
        Assert.Equal(Utf8("x"), header.Value);
    }

    [Fact]
    public void TruncatedRecordIsCorrupt()
    {
        for (var cut = 1; cut < GoodRecord.Length; cut++)
        {
            ReadCorrupt(WrapRecords(GoodRecord.AsSpan(0, cut), 1));
        }
    }

    [Fact]
    public void FewerRecordsThanDeclaredIsCorrupt()
    {
        var e = ReadCorrupt(WrapRecords([.. GoodRecord, .. GoodRecord], 3));
        Assert.Contains("holds only 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MoreRecordsThanDeclaredIsCorrupt()
    {
        var e = ReadCorrupt(WrapRecords([.. GoodRecord, .. GoodRecord], 1));
        Assert.Contains("follow the last one", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZeroRecordsWithTrailingBytesIsCorrupt() => ReadCorrupt(WrapRecords([0], 0));

    [Fact]
    public void ZeroRecordsAndNoBytesIsFine() => Assert.Empty(ReadAll(WrapRecords([], 0)));

    [Fact]
    public void RecordLongerThanItsFieldsIsCorrupt()
    {
        var body = RecordBody(0, 0, Utf8("k"), Utf8("v"));
        var e = ReadCorrupt(WrapRecords([.. VarInt(body.Length + 1), .. body, 0], 1));
        Assert.Contains("fields use", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordShorterThanItsFieldsIsCorrupt()
    {
        var body = RecordBody(0, 0, Utf8("k"), Utf8("v"));
        ReadCorrupt(WrapRecords([.. VarInt(body.Length - 1), .. body], 1));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(-100)]
    [InlineData(int.MaxValue)]
    public void ImpossibleRecordLengthIsCorrupt(int length) =>
        ReadCorrupt(WrapRecords([.. VarInt(length), .. RecordBody(0, 0, null, null)], 1));

    [Theory]
    [InlineData(-2)]
    [InlineData(int.MinValue)]
    public void NegativeKeyLengthIsCorrupt(int keyLength)
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(0), .. VarInt(keyLength), .. VarInt(-1), .. VarInt(0)];
        var e = ReadCorrupt(WrapRecords(WithLength(body), 1));
        Assert.Contains("negative", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeValueLengthIsCorrupt()
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(0), .. VarInt(-1), .. VarInt(-7), .. VarInt(0)];
        ReadCorrupt(WrapRecords(WithLength(body), 1));
    }

    [Fact]
    public void KeyLongerThanTheRecordIsCorrupt()
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(0), .. VarInt(1_000_000), 1, 2, 3];
        ReadCorrupt(WrapRecords(WithLength(body), 1));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1000)]
    [InlineData(int.MaxValue)]
    public void ImpossibleHeaderCountIsCorrupt(int headerCount)
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(0), .. VarInt(-1), .. VarInt(-1), .. VarInt(headerCount), 0, 0];
        var e = ReadCorrupt(WrapRecords(WithLength(body), 1));
        Assert.Contains("headers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NullHeaderKeyIsCorrupt()
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(0), .. VarInt(-1), .. VarInt(-1), .. VarInt(1), .. VarInt(-1), .. VarInt(-1)];
        var e = ReadCorrupt(WrapRecords(WithLength(body), 1));
        Assert.Contains("cannot be null", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeHeaderValueLengthIsCorrupt()
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(0), .. VarInt(-1), .. VarInt(-1), .. VarInt(1), .. VarInt(1), (byte)'h', .. VarInt(-3)];
        ReadCorrupt(WrapRecords(WithLength(body), 1));
    }

    [Fact]
    public void VarIntLongerThanFiveBytesIsCorrupt()
    {
        // offsetDelta as six continuation-heavy bytes.
        byte[] body = [0, .. VarInt(0), 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, .. VarInt(-1), .. VarInt(-1), .. VarInt(0)];
        var e = ReadCorrupt(WrapRecords(WithLength(body), 1));
        Assert.Contains("longer than 32 bits", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void VarIntOverflowingThirtyTwoBitsIsCorrupt()
    {
        byte[] body = [0, .. VarInt(0), 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, .. VarInt(-1), .. VarInt(-1), .. VarInt(0)];
        ReadCorrupt(WrapRecords(WithLength(body), 1));
    }

    [Fact]
    public void VarLongLongerThanTenBytesIsCorrupt()
    {
        byte[] body = [0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, .. VarInt(0), .. VarInt(-1), .. VarInt(-1), .. VarInt(0)];
        var e = ReadCorrupt(WrapRecords(WithLength(body), 1));
        Assert.Contains("longer than 64 bits", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordLengthVarIntCutOffIsCorrupt() => ReadCorrupt(WrapRecords([0x80, 0x80], 1));

    [Fact]
    public void ExtremeVarIntsWithinRangeAreAccepted()
    {
        var body = RecordBody(long.MinValue, int.MaxValue, null, null);
        var record = Assert.Single(ReadAll(WrapRecords(WithLength(body), 1, baseOffset: 0)));
        Assert.Equal(int.MaxValue, record.OffsetDelta);
        Assert.Equal(unchecked(1000 + long.MinValue), record.Timestamp);
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void GarbageCompressedRecordsAreCorrupt(CompressionType compression)
    {
        byte[] garbage = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C];
        ReadCorrupt(WrapRecords(garbage, 1, compression));
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void TruncatedCompressedRecordsAreCorrupt(CompressionType compression)
    {
        var records = Enumerable.Range(0, 50).Select(i => new TestRecord(i, $"key-{i}", $"value-{i}-{new string('v', i)}")).ToArray();
        var batch = Build(records, compression);
        var section = RecordBatch.Parse(batch).RecordsSection;
        foreach (var keep in new[] { 0, 1, section.Length / 3, section.Length / 2, section.Length - 12 })
        {
            ReadCorrupt(WrapRecords(section[..keep], records.Length, compression));
        }
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void DecompressionBombIsCapped(CompressionType compression)
    {
        // 4 MiB of zeros compresses to a few KiB; a 1 MiB cap must refuse it without buffering it all.
        var zeros = new byte[4 * 1024 * 1024];
        using var compressed = new PooledBufferWriter();
        RecordCompression.Compress(compression, zeros, compressed);
        Assert.True(compressed.WrittenCount < 300 * 1024);

        var batch = WrapRecords(compressed.WrittenSpan, 1, compression);
        var e = ReadCorrupt(batch, maxDecompressedSize: 1024 * 1024);
        Assert.Contains("limit", e.Message, StringComparison.Ordinal);

        using var output = new PooledBufferWriter();
        Assert.Throws<KafkaProtocolException>(() => RecordCompression.Decompress(compression, compressed.WrittenSpan, output, 1024 * 1024));
        Assert.True(output.Capacity <= 2 * 1024 * 1024 + 256 * 1024, $"buffered {output.Capacity} bytes");
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    [InlineData(CompressionType.None)]
    public void OutputExactlyAtTheCapIsAccepted(CompressionType compression)
    {
        var data = new byte[100_000];
        new Random(3).NextBytes(data.AsSpan(0, 50_000));
        using var compressed = new PooledBufferWriter();
        RecordCompression.Compress(compression, data, compressed);
        using var output = new PooledBufferWriter();
        Assert.Equal(data.Length, RecordCompression.Decompress(compression, compressed.WrittenSpan, output, data.Length));
        Assert.Equal(data, output.WrittenSpan.ToArray());
        output.Clear();
        AssertCorrupt(() => RecordCompression.Decompress(compression, compressed.WrittenSpan, output, data.Length - 1));
    }
}
