using System.Buffers;
using CsCheck;
using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class RoundTripTests
{
    public static TheoryData<CompressionType> AllCompressions =>
        [CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd];

    private static TestRecord[] Mixed() =>
    [
        new(1_700_000_000_000, "key-1", "value-1"),
        new(1_700_000_000_005, null, "no key"),
        new(1_699_999_999_990, "tombstone", (string?)null),
        new(1_700_000_000_003, "", ""),
        new(1_700_000_000_004, null, null, new Header("trace", Utf8("abc")), new Header("empty", []), new Header("null", null)),
        new(1_700_000_000_004, "unicode", "ünïcødé ✓", new Header("clé-ключ-键", Utf8("v"))),
    ];

    private static void AssertSame(IReadOnlyList<TestRecord> written, List<ReadRecord> read, long baseOffset, long? logAppendTime = null)
    {
        Assert.Equal(written.Count, read.Count);
        for (var i = 0; i < written.Count; i++)
        {
            Assert.Equal(baseOffset + i, read[i].Offset);
            Assert.Equal(i, read[i].OffsetDelta);
            Assert.Equal(logAppendTime ?? written[i].Timestamp, read[i].Timestamp);
            Assert.Equal(written[i].Key, read[i].Key);
            Assert.Equal(written[i].Value, read[i].Value);
            Assert.Equal(written[i].Headers.Select(h => (h.Key, h.Value)), read[i].Headers);
        }
    }

    [Theory]
    [MemberData(nameof(AllCompressions))]
    public void RecordsRoundTripWithEveryCodec(CompressionType compression)
    {
        var records = Mixed();
        var bytes = Build(records, compression, b => b.BaseOffset = 500);

        var batch = RecordBatch.Parse(bytes);
        Assert.True(batch.VerifyCrc());
        Assert.Equal(compression, batch.Header.Compression);
        Assert.Equal(records.Length, batch.Header.RecordCount);
        Assert.Equal(records.Length - 1, batch.Header.LastOffsetDelta);
        Assert.Equal(records[0].Timestamp, batch.Header.BaseTimestamp);
        Assert.Equal(records.Max(r => r.Timestamp), batch.Header.MaxTimestamp);
        Assert.Equal(TimestampType.CreateTime, batch.Header.TimestampType);
        Assert.Equal(-1, batch.Header.ProducerId);
        Assert.Equal(-1, batch.Header.ProducerEpoch);
        Assert.Equal(-1, batch.Header.BaseSequence);
        Assert.Equal(-1, batch.Header.PartitionLeaderEpoch);
        Assert.Equal(bytes.Length, batch.Header.TotalSize);

        AssertSame(records, ReadAll(bytes), 500);
    }

    [Theory]
    [MemberData(nameof(AllCompressions))]
    public void LargeBatchesSpanSeveralCodecBlocks(CompressionType compression)
    {
        // ~300 KiB: several 32 KiB snappy blocks and 64 KiB lz4 blocks, partly incompressible.
        var random = new Random(7);
        var records = Enumerable.Range(0, 300).Select(i =>
        {
            var value = new byte[1024];
            if (i % 2 == 0)
            {
                random.NextBytes(value);
            }

            return new TestRecord(i, Utf8($"key-{i}"), value, []);
        }).ToArray();

        var bytes = Build(records, compression);
        AssertSame(records, ReadAll(bytes), 0);
    }

    [Theory]
    [MemberData(nameof(AllCompressions))]
    public void LogAppendTimeAppliesToEveryRecord(CompressionType compression)
    {
        var records = Mixed();
        var bytes = Build(records, compression, b => b.LogAppendTime = 1_800_000_000_000);
        var header = RecordBatch.Parse(bytes).Header;
        Assert.Equal(TimestampType.LogAppendTime, header.TimestampType);
        Assert.Equal(1_800_000_000_000, header.MaxTimestamp);
        Assert.Equal(records[0].Timestamp, header.BaseTimestamp);
        AssertSame(records, ReadAll(bytes), 0, logAppendTime: 1_800_000_000_000);
    }

    [Theory]
    [MemberData(nameof(AllCompressions))]
    public void TransactionalProducerFieldsRoundTrip(CompressionType compression)
    {
        var records = Mixed();
        var bytes = Build(records, compression, b =>
        {
            b.ProducerId = 9_000_000_001;
            b.ProducerEpoch = 3;
            b.BaseSequence = 17;
            b.IsTransactional = true;
            b.PartitionLeaderEpoch = 12;
        });

        var header = RecordBatch.Parse(bytes).Header;
        Assert.True(header.IsTransactional);
        Assert.False(header.IsControlBatch);
        Assert.Equal(9_000_000_001, header.ProducerId);
        Assert.Equal(3, header.ProducerEpoch);
        Assert.Equal(17, header.BaseSequence);
        Assert.Equal(17 + records.Length - 1, header.LastSequence);
        Assert.Equal(12, header.PartitionLeaderEpoch);
        AssertSame(records, ReadAll(bytes), 0);
    }

    [Fact]
    public void DeleteHorizonBecomesTheBaseTimestamp()
    {
        var records = Mixed();
        var bytes = Build(records, configure: b => b.DeleteHorizonMs = 1_650_000_000_000);
        var header = RecordBatch.Parse(bytes).Header;
        Assert.True(header.HasDeleteHorizonMs);
        Assert.Equal(1_650_000_000_000, header.DeleteHorizonMs);
        AssertSame(records, ReadAll(bytes), 0);
    }

    [Fact]
    public void DeleteHorizonAfterTheFirstRecordIsRefused()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1, [1], [2]);
        Assert.Throws<InvalidOperationException>(() => builder.DeleteHorizonMs = 5);
    }

    [Fact]
    public void BuilderResetsAndSwitchesCodecs()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1, Utf8("a"), Utf8("1"));
        var first = builder.ToArray();
        Assert.Equal(builder.UncompressedSizeInBytes, first.Length);

        builder.Reset();
        builder.Compression = CompressionType.Zstd;
        builder.Append(2, Utf8("b"), Utf8("2"));
        builder.Append(3, Utf8("c"), Utf8("3"));
        var second = builder.ToArray();

        Assert.Single(ReadAll(first));
        Assert.Equal(["b", "c"], ReadAll(second).Select(r => System.Text.Encoding.UTF8.GetString(r.Key!)));
        Assert.Equal(CompressionType.Zstd, RecordBatch.Parse(second).Header.Compression);
    }

    [Fact]
    public void SpanAppendDistinguishesEmptyFromNull()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1, [], keyIsNull: false, [], valueIsNull: true);
        var record = Assert.Single(ReadAll(builder.ToArray()));
        Assert.NotNull(record.Key);
        Assert.Empty(record.Key);
        Assert.Null(record.Value);
    }

    [Fact]
    public void WriteToAppendsTheBatch()
    {
        using var builder = new RecordBatchBuilder(CompressionType.Lz4);
        builder.Append(1, Utf8("a"), Utf8("1"));
        using var destination = new PooledBufferWriter();
        destination.Write<byte>([9, 9]);
        builder.WriteTo(destination);
        Assert.Equal([9, 9, .. builder.ToArray()], destination.WrittenSpan.ToArray());
    }

    [Fact]
    public void EmptyBatchCannotBeBuilt()
    {
        using var builder = new RecordBatchBuilder();
        Assert.Throws<InvalidOperationException>(() => builder.Build());
    }

    [Fact]
    public void CompressedBatchNeedsABuffer()
    {
        var bytes = Build(Mixed(), CompressionType.Gzip);
        Assert.Throws<InvalidOperationException>(() => RecordBatch.Parse(bytes).GetRecords());
    }

    [Fact]
    public void UncompressedBatchIsReadInPlace()
    {
        var bytes = Build(Mixed());
        var count = 0;
        foreach (var record in RecordBatch.Parse(bytes).GetRecords())
        {
            count++;
            _ = record.Offset;
        }

        Assert.Equal(Mixed().Length, count);
    }

    [Fact]
    public void CompressionLevelsAreApplied()
    {
        var records = Enumerable.Range(0, 200).Select(i => new TestRecord(i, $"key-{i % 7}", $"value {i % 13} {new string('x', i % 50)}")).ToArray();
        foreach (var (type, level) in new[] { (CompressionType.Gzip, 1), (CompressionType.Gzip, 9), (CompressionType.Lz4, 1), (CompressionType.Lz4, 17), (CompressionType.Zstd, 1), (CompressionType.Zstd, 19), (CompressionType.Zstd, -5) })
        {
            var bytes = Build(records, type, b => b.CompressionLevel = level);
            AssertSame(records, ReadAll(bytes), 0);
        }
    }

    [Fact]
    public void RandomRecordsRoundTrip()
    {
        var genBytes = Gen.Byte.Array[0, 40];
        var genHeader = Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 0, 8], genBytes.Null(), (k, v) => new Header(k, v));
        var genRecord = Gen.Select(Gen.Long, genBytes.Null(), genBytes.Null(), genHeader.Array[0, 4], (t, k, v, h) => new TestRecord(t, k, v, h));
        var genBatch = Gen.Select(
            genRecord.Array[1, 30],
            Gen.Enum<CompressionType>(),
            Gen.Long[0, long.MaxValue / 2],
            Gen.Bool,
            Gen.Long.Nullable());

        genBatch.Sample((records, compression, baseOffset, transactional, logAppendTime) =>
        {
            var bytes = Build(records, compression, b =>
            {
                b.BaseOffset = baseOffset;
                b.IsTransactional = transactional;
                b.LogAppendTime = logAppendTime;
            });

            var batch = RecordBatch.Parse(bytes);
            Assert.True(batch.VerifyCrc());
            Assert.Equal(transactional, batch.Header.IsTransactional);
            Assert.Equal(logAppendTime ?? records.Max(r => r.Timestamp), batch.Header.MaxTimestamp);
            AssertSame(records, ReadAll(bytes), baseOffset, logAppendTime);
        }, iter: 300);
    }
}
