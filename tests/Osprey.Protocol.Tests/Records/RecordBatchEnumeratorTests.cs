using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class RecordBatchEnumeratorTests
{
    private static byte[] ThreeBatches(out int[] sizes)
    {
        var a = Build([new TestRecord(1, "a", "1")], configure: b => b.BaseOffset = 0);
        var b = Build([new TestRecord(2, "b", "2"), new TestRecord(3, "c", "3")], CompressionType.Snappy, c => c.BaseOffset = 1);
        var c = Build([new TestRecord(4, null, "4")], configure: x => x.BaseOffset = 3);
        sizes = [a.Length, b.Length, c.Length];
        return [.. a, .. b, .. c];
    }

    [Fact]
    public void IteratesConcatenatedBatches()
    {
        var bytes = ThreeBatches(out var sizes);
        var offsets = new List<long>();
        var positions = new List<int>();
        var enumerator = RecordBatch.Enumerate(bytes);
        foreach (var batch in enumerator)
        {
            offsets.Add(batch.Header.BaseOffset);
            Assert.True(batch.VerifyCrc());
        }

        var e = RecordBatch.Enumerate(bytes);
        while (e.MoveNext())
        {
            positions.Add(e.CurrentPosition);
        }

        Assert.Equal([0L, 1L, 3L], offsets);
        Assert.Equal([0, sizes[0], sizes[0] + sizes[1]], positions);
        Assert.Equal(bytes.Length, e.BytesConsumed);
    }

    [Fact]
    public void EmptyBufferHasNoBatches()
    {
        var e = RecordBatch.Enumerate([]);
        Assert.False(e.MoveNext());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(16)]
    [InlineData(40)]
    public void TrailingPartialBatchEndsLenientIteration(int cut)
    {
        var bytes = ThreeBatches(out var sizes);
        var truncated = bytes.AsSpan(0, sizes[0] + sizes[1] + Math.Min(cut, sizes[2] - 1));
        var e = RecordBatch.Enumerate(truncated, allowTrailingPartialBatch: true);
        var count = 0;
        while (e.MoveNext())
        {
            count++;
        }

        Assert.Equal(2, count);
        Assert.Equal(sizes[0] + sizes[1], e.BytesConsumed);
    }

    [Fact]
    public void TrailingPartialBatchIsCorruptInStrictMode()
    {
        var bytes = ThreeBatches(out _);
        var e = AssertCorrupt(() =>
        {
            foreach (var batch in RecordBatch.Enumerate(bytes.AsSpan(0, bytes.Length - 1)))
            {
                _ = batch.Header;
            }
        });
        Assert.Contains("partial batch", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnImpossibleLengthIsCorruptEvenInLenientMode()
    {
        var bytes = ThreeBatches(out var sizes);
        WriteInt32(bytes, sizes[0] + 8, 10);
        AssertCorrupt(() =>
        {
            foreach (var batch in RecordBatch.Enumerate(bytes, allowTrailingPartialBatch: true))
            {
                _ = batch.Header;
            }
        });
    }

    [Fact]
    public void OldMagicInTheMiddleIsRefused()
    {
        var bytes = ThreeBatches(out var sizes);
        bytes[sizes[0] + 16] = 1;
        var e = Assert.Throws<KafkaProtocolException>(() =>
        {
            foreach (var batch in RecordBatch.Enumerate(bytes, allowTrailingPartialBatch: true))
            {
                _ = batch.Header;
            }
        });
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, e.ErrorCode);
    }
}
