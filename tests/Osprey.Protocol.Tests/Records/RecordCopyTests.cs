using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

/// <summary>Copying records into a new batch with their offsets, as compaction does.</summary>
public class RecordCopyTests
{
    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Zstd)]
    public void CopiedRecordsKeepTheirOffsetsTimestampsAndHeadersAndTheBatchItsLastOffsetDelta(CompressionType compression)
    {
        var original = Build(
            [
                new TestRecord(1_000, "a", "1"),
                new TestRecord(1_005, "b", null, new Header("h", Utf8("x")), new Header("n", null)),
                new TestRecord(990, null, "3"),
                new TestRecord(1_003, "d", "4", new Header("ключ", [0xFF, 0x00])),
            ],
            compression,
            b =>
            {
                b.BaseOffset = 100;
                b.ProducerId = 7;
                b.ProducerEpoch = 2;
                b.BaseSequence = 40;
            });
        var header = RecordBatch.Parse(original).Header;

        using var builder = new RecordBatchBuilder(compression)
        {
            BaseOffset = header.BaseOffset,
            ProducerId = header.ProducerId,
            ProducerEpoch = header.ProducerEpoch,
            BaseSequence = header.BaseSequence,
            DeleteHorizonMs = 5_000,
            LastOffsetDelta = header.LastOffsetDelta,
        };
        using var buffer = new PooledBufferWriter();
        foreach (var record in RecordBatch.Parse(original).GetRecords(buffer))
        {
            if (record.OffsetDelta is 1 or 3)
            {
                builder.Append(record);
            }
        }

        var copy = builder.ToArray();
        var batch = RecordBatch.Parse(copy);
        Assert.True(batch.VerifyCrc());
        Assert.Equal((100L, 3, 2, 103L), (batch.Header.BaseOffset, batch.Header.LastOffsetDelta, batch.Header.RecordCount, batch.Header.LastOffset));
        Assert.Equal((7L, (short)2, 40, 43), (batch.Header.ProducerId, batch.Header.ProducerEpoch, batch.Header.BaseSequence, batch.Header.LastSequence));
        Assert.Equal(5_000, batch.Header.DeleteHorizonMs);
        Assert.Equal(1_005, batch.Header.MaxTimestamp);

        var all = ReadAll(original);
        var kept = ReadAll(copy);
        Assert.Equal([all[1], all[3]], kept, (x, y) =>
            x.Offset == y.Offset && x.Timestamp == y.Timestamp && x.OffsetDelta == y.OffsetDelta
            && Equal(x.Key, y.Key) && Equal(x.Value, y.Value)
            && x.Headers.Count == y.Headers.Count && x.Headers.Zip(y.Headers).All(p => p.First.Key == p.Second.Key && Equal(p.First.Value, p.Second.Value)));
    }

    private static bool Equal(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    [Fact]
    public void CopiedOffsetsMustIncreaseAndTheLastOffsetDeltaCoverThem()
    {
        var original = Build([new TestRecord(1, "a", "1"), new TestRecord(2, "b", "2")], configure: b => b.BaseOffset = 10);
        using var builder = new RecordBatchBuilder { BaseOffset = 10 };
        using var buffer = new PooledBufferWriter();
        var records = RecordBatch.Parse(original).GetRecords(buffer);
        Assert.True(records.MoveNext());
        Assert.True(records.MoveNext());
        builder.Append(records.Current);
        Assert.Throws<ArgumentException>(() =>
        {
            using var again = new PooledBufferWriter();
            var first = RecordBatch.Parse(original).GetRecords(again);
            first.MoveNext();
            builder.Append(first.Current); // offset 10 after 11
        });

        // Appending without an offset continues after the last one.
        builder.Append(3, Utf8("c"), Utf8("3"));
        builder.LastOffsetDelta = 1;
        Assert.Throws<InvalidOperationException>(() => builder.Build());
        builder.LastOffsetDelta = 5;
        var batch = RecordBatch.Parse(builder.ToArray());
        Assert.Equal((5, 2), (batch.Header.LastOffsetDelta, batch.Header.RecordCount));
        Assert.Equal([11L, 12], ReadAll(builder.ToArray()).Select(r => r.Offset));

        builder.Reset();
        Assert.Null(builder.LastOffsetDelta);
        builder.Append(4, Utf8("d"), Utf8("4"));
        Assert.Equal(0, RecordBatch.Parse(builder.ToArray()).Header.LastOffsetDelta);
    }
}
