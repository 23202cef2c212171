using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class AllocationTests
{
    private static long ReadEverything(ReadOnlySpan<byte> bytes, PooledBufferWriter buffer)
    {
        long sum = 0;
        foreach (var batch in RecordBatch.Enumerate(bytes))
        {
            foreach (var record in batch.GetRecords(buffer))
            {
                sum += record.Offset + record.Timestamp + record.Key.Length + record.Value.Length + (record.IsKeyNull ? 1 : 0);
                foreach (var header in record.Headers)
                {
                    sum += header.Key.Length + header.Value.Length;
                }
            }
        }

        return sum;
    }

    [Fact]
    public void IteratingUncompressedRecordsAllocatesNothing()
    {
        var records = Enumerable.Range(0, 1000)
            .Select(i => new TestRecord(i, i % 3 == 0 ? null : Utf8($"key-{i}"), Utf8($"value-{i}"), [new Header("h", Utf8("x")), new Header("n", null)]))
            .ToArray();
        var bytes = Build(records);
        using var buffer = new PooledBufferWriter();
        var expected = ReadEverything(bytes, buffer); // JIT and tier up outside the measurement

        var before = GC.GetAllocatedBytesForCurrentThread();
        var sum = ReadEverything(bytes, buffer);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(expected, sum);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void BuildingRecordsDoesNotAllocatePerRecord()
    {
        using var builder = new RecordBatchBuilder();
        var key = Utf8("key");
        var value = new byte[100];
        Header[] headers = [new("trace-id", Utf8("abc"))];

        void Fill(int count)
        {
            builder.Reset();
            for (var i = 0; i < count; i++)
            {
                builder.Append(i, key, value, headers);
            }

            _ = builder.Build();
        }

        Fill(2000); // grow the pooled buffer to its final size first
        var before = GC.GetAllocatedBytesForCurrentThread();
        Fill(2000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
