using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class RecompressionTests
{
    public static TheoryData<CompressionType, CompressionType> Pairs()
    {
        var data = new TheoryData<CompressionType, CompressionType>();
        foreach (var from in Enum.GetValues<CompressionType>())
        {
            foreach (var to in Enum.GetValues<CompressionType>().Where(t => t != from))
            {
                data.Add(from, to);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void EverythingButTheCodecStays(CompressionType from, CompressionType to)
    {
        TestRecord[] records =
        [
            new(1_000, "k1", "v1", new Header("h", Utf8("x"))),
            new(1_005, null, "no key"),
            new(999, "k3", null),
        ];
        var original = Build(records, from, b =>
        {
            b.BaseOffset = 40;
            b.ProducerId = 77;
            b.ProducerEpoch = 3;
            b.BaseSequence = 12;
            b.IsTransactional = true;
            b.PartitionLeaderEpoch = 5;
        });
        var control = new RecordBatchBuilder { IsControlBatch = true, ProducerId = 77, ProducerEpoch = 3, BaseOffset = 43 };
        control.Append(1_010, Utf8("\0\0\0\u0001"), Utf8("\0\0\0\0\0\0"));
        byte[] both = [.. original, .. control.ToArray()];
        control.Dispose();

        Assert.True(RecordBatchRecompression.IsNeeded(both, to));
        var rewritten = RecordBatchRecompression.Recompress(both, to);
        Assert.False(RecordBatchRecompression.IsNeeded(rewritten, to));

        var batches = new List<RecordBatchHeader>();
        foreach (var batch in RecordBatch.Enumerate(rewritten))
        {
            batch.EnsureValidCrc();
            batches.Add(batch.Header);
        }

        var (before, after) = (RecordBatch.Parse(original).Header, batches[0]);
        Assert.Equal(to, after.Compression);
        Assert.Equal(
            (before.BaseOffset, before.LastOffsetDelta, before.MaxTimestamp, before.ProducerId, before.ProducerEpoch, before.BaseSequence, before.IsTransactional, before.PartitionLeaderEpoch, before.RecordCount),
            (after.BaseOffset, after.LastOffsetDelta, after.MaxTimestamp, after.ProducerId, after.ProducerEpoch, after.BaseSequence, after.IsTransactional, after.PartitionLeaderEpoch, after.RecordCount));
        Assert.Equivalent(ReadAll(original), ReadAll(rewritten.AsSpan(0, after.TotalSize)), strict: true);
        Assert.True(batches[1].IsControlBatch);
        Assert.Equal(both[original.Length..], rewritten[after.TotalSize..]);
    }
}
