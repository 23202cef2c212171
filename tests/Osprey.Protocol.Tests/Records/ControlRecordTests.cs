using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class ControlRecordTests
{
    [Theory]
    [InlineData(ControlRecordType.Commit, new byte[] { 0, 0, 0, 1 })]
    [InlineData(ControlRecordType.Abort, new byte[] { 0, 0, 0, 0 })]
    public void MarkerBatchCarriesKeyValueAndFlags(ControlRecordType type, byte[] expectedKey)
    {
        var bytes = ControlRecords.CreateEndTransactionMarkerBatch(
            new EndTransactionMarker(type, CoordinatorEpoch: 0x01020304), producerId: 42, producerEpoch: 3, timestamp: 1_700_000_000_000, baseOffset: 99);

        var batch = RecordBatch.Parse(bytes);
        Assert.True(batch.VerifyCrc());
        Assert.True(batch.Header.IsControlBatch);
        Assert.True(batch.Header.IsTransactional);
        Assert.Equal(42, batch.Header.ProducerId);
        Assert.Equal(3, batch.Header.ProducerEpoch);
        Assert.Equal(-1, batch.Header.BaseSequence);
        Assert.Equal(1, batch.Header.RecordCount);
        Assert.Equal(99, batch.Header.BaseOffset);

        var count = 0;
        foreach (var record in batch.GetRecords())
        {
            count++;
            Assert.Equal(expectedKey, record.Key.ToArray());
            Assert.Equal(new byte[] { 0, 0, 1, 2, 3, 4 }, record.Value.ToArray());
            Assert.Equal(new ControlRecordKey(0, type), ControlRecords.ParseKey(record));
            Assert.Equal(new EndTransactionMarker(type, 0x01020304), ControlRecords.ParseEndTransactionMarker(record));
            Assert.Equal(99, record.Offset);
            Assert.Equal(1_700_000_000_000, record.Timestamp);
        }

        Assert.Equal(1, count);
    }

    [Fact]
    public void NewerVersionsAreReadByTheirPrefix()
    {
        byte[] key = [0, 1, 0, 1, 0xAA];
        byte[] value = [0, 1, 0, 0, 0, 9, 0xBB, 0xCC];
        Assert.Equal(new ControlRecordKey(1, ControlRecordType.Commit), ControlRecords.ParseKey(key));
        Assert.Equal(new EndTransactionMarker(ControlRecordType.Commit, 9), ControlRecords.ParseEndTransactionMarker(key, value));
    }

    [Fact]
    public void OtherControlTypesParseAsKeysButAreNotMarkers()
    {
        byte[] key = [0, 0, 0, 3];
        Assert.Equal((ControlRecordType)3, ControlRecords.ParseKey(key).Type);
        AssertCorrupt(() => ControlRecords.ParseEndTransactionMarker(key, [0, 0, 0, 0, 0, 0]));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0 }, new byte[] { 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0xFF, 0xFF, 0, 1 }, new byte[] { 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 0, 1 }, new byte[] { 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 0, 1 }, new byte[] { 0xFF, 0xFE, 0, 0, 0, 0 })]
    public void MalformedMarkersAreCorrupt(byte[] key, byte[] value) =>
        AssertCorrupt(() => ControlRecords.ParseEndTransactionMarker(key, value));

    [Fact]
    public void NullKeyOrValueIsCorrupt()
    {
        var bytes = Build([new TestRecord(1, null, "v")], configure: b => b.IsControlBatch = true);
        AssertCorrupt(() =>
        {
            foreach (var record in RecordBatch.Parse(bytes).GetRecords())
            {
                _ = ControlRecords.ParseEndTransactionMarker(record);
            }
        });
    }

    [Fact]
    public void AppendRefusesNonMarkerTypes()
    {
        using var builder = new RecordBatchBuilder();
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            ControlRecords.AppendEndTransactionMarker(builder, new EndTransactionMarker((ControlRecordType)2, 0), 0));
    }

    [Fact]
    public void MarkersCanBeCompressedLikeAnyBatch()
    {
        using var builder = new RecordBatchBuilder(CompressionType.Zstd) { ProducerId = 7, ProducerEpoch = 1 };
        ControlRecords.AppendEndTransactionMarker(builder, new EndTransactionMarker(ControlRecordType.Abort, 5), 10);
        var bytes = builder.ToArray();

        using var buffer = new PooledBufferWriter();
        var batch = RecordBatch.Parse(bytes);
        Assert.True(batch.Header.IsControlBatch);
        foreach (var record in batch.GetRecords(buffer))
        {
            Assert.Equal(new EndTransactionMarker(ControlRecordType.Abort, 5), ControlRecords.ParseEndTransactionMarker(record));
        }
    }
}
