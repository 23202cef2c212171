using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

public class PartitionLogTests
{
    private static PartitionLog Open(TempDirectory dir, ManualTimeProvider time, LogConfig? config = null, bool clean = false, long recoveryPoint = 0) =>
        PartitionLog.Open(Path.Combine(dir.Path, "orders-0"), "orders", 0, config ?? new LogConfig(), time, recoveryPoint, 0, clean);

    [Fact]
    public void AppendAssignsOffsetsAndReadReturnsTheRecords()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        var first = log.Append(Batches.Make(3));
        var second = log.Append(Batches.Make(2, prefix: "more"));
        Assert.Equal((0, 2, 3), (first.FirstOffset, first.LastOffset, first.RecordCount));
        Assert.Equal((3, 4), (second.FirstOffset, second.LastOffset));
        Assert.Equal(5, log.LogEndOffset);
        Assert.Equal(-1, first.LogAppendTime);

        var records = Batches.ReadAll(log);
        Assert.Equal([0L, 1, 2, 3, 4], records.Select(r => r.Offset));
        Assert.Equal(["value-0", "value-1", "value-2", "more-0", "more-1"], records.Select(r => r.Value));

        // A read from the middle of a batch returns the whole batch that holds the offset.
        var middle = Batches.Records(PartitionLog.ReadBytes(log.Read(1, 1 << 20)));
        Assert.Equal(0, middle[0].Offset);
        Assert.Contains(middle, r => r.Offset == 1);
    }

    [Fact]
    public void AFollowerFarBehindStartsOverPastItsEndAndKeepsThatStartAcrossARestart()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using (var log = Open(dir, time, new LogConfig { SegmentBytes = Batches.Make(2).Length * 2 }))
        {
            for (var i = 0; i < 4; i++)
            {
                var batch = Batches.Make(2);
                RecordBatch.SetPartitionLeaderEpoch(batch, 1);
                log.Append(batch, AppendOrigin.Client, leaderEpoch: 1);
            }

            Assert.Throws<ArgumentOutOfRangeException>(() => log.TruncateFullyAndStartAt(8));
            log.TruncateFullyAndStartAt(100);
            Assert.Equal((100L, 100L), (log.LogStartOffset, log.LogEndOffset));
            Assert.Empty(log.LeaderEpochs.Entries);
            Assert.Single(log.Segments);
            Assert.Null(log.Read(100, 1 << 20).Region);

            // The leader's batch at 100 follows, with its offsets and epoch.
            var copied = Batches.Make(3);
            RecordBatch.SetBaseOffset(copied, 100);
            RecordBatch.SetPartitionLeaderEpoch(copied, 4);
            log.Append(copied, AppendOrigin.Replication);
            Assert.Equal(103, log.LogEndOffset);
            Assert.Equal([(4, 100L)], log.LeaderEpochs.Entries);
        }

        // Only the new segment is left on disk; a restart recovers from it.
        Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "orders-0"), "*.log"));
        using var reopened = Open(dir, time);
        Assert.Equal((100L, 103L), (reopened.LogStartOffset, reopened.LogEndOffset));
        Assert.Equal([100L, 101, 102], Batches.ReadAll(reopened).Select(r => r.Offset));
    }

    [Fact]
    public void OffsetsOutsideTheLogAreOutOfRange()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider());
        log.Append(Batches.Make(2));
        Assert.Equal(ErrorCode.OffsetOutOfRange, Assert.Throws<KafkaProtocolException>(() => log.Read(3, 100)).ErrorCode);
        Assert.Equal(ErrorCode.OffsetOutOfRange, Assert.Throws<KafkaProtocolException>(() => log.Read(-1, 100)).ErrorCode);
        Assert.Null(log.Read(2, 100).Region); // the log end offset: nothing yet, not an error
    }

    [Fact]
    public void ReadsStopAtTheByteLimitButReturnAtLeastOneBatch()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider());
        for (var i = 0; i < 5; i++)
        {
            log.Append(Batches.Make(1, valueSize: 100));
        }

        var one = Batches.Make(1, valueSize: 100).Length;
        Assert.Equal(one, log.Read(0, 10).Length); // minOneBatch
        Assert.Null(log.Read(0, 10, minOneBatch: false).Region);
        Assert.Equal(2 * one, log.Read(0, (2 * one) + 10).Length);
        Assert.Equal(3 * one, log.Read(0, 1 << 20, maxOffset: 3).Length); // a high watermark of 3
    }

    [Fact]
    public void SegmentsRollOnSizeAndAreNamedByBaseOffset()
    {
        using var dir = new TempDirectory();
        var batch = Batches.Make(10, valueSize: 50);
        var config = new LogConfig { SegmentBytes = batch.Length * 3, IndexIntervalBytes = 1 };
        using var log = Open(dir, new ManualTimeProvider(), config);
        for (var i = 0; i < 10; i++)
        {
            log.Append(batch);
        }

        Assert.Equal([0L, 30, 60, 90], log.Segments.Select(s => s.BaseOffset));
        Assert.True(File.Exists(Path.Combine(log.Directory, "00000000000000000030.log")));
        Assert.True(File.Exists(Path.Combine(log.Directory, "00000000000000000030.index")));
        Assert.True(File.Exists(Path.Combine(log.Directory, "00000000000000000030.timeindex")));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), Batches.ReadAll(log).Select(r => r.Offset));
        Assert.Equal(Enumerable.Range(45, 55).Select(i => (long)i), Batches.ReadAll(log, 45).Select(r => r.Offset));
    }

    [Fact]
    public void SegmentsRollOnAge()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, new LogConfig { SegmentMs = 1000 });
        log.Append(Batches.Make(1));
        time.Advance(999);
        log.Append(Batches.Make(1));
        Assert.Single(log.Segments);
        time.Advance(1);
        log.Append(Batches.Make(1));
        Assert.Equal([0L, 2], log.Segments.Select(s => s.BaseOffset));
    }

    [Fact]
    public void SegmentsRollWhenTheIndexIsFull()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider(), new LogConfig { SegmentIndexBytes = 3 * OffsetIndex.EntrySize, IndexIntervalBytes = 1 });
        for (var i = 0; i < 10; i++)
        {
            log.Append(Batches.Make(1));
        }

        Assert.True(log.Segments.Count >= 2);
        Assert.All(log.Segments, s => Assert.True(s.OffsetIndex.Count <= 3));
        Assert.Equal(10, Batches.ReadAll(log).Count);
    }

    [Fact]
    public void BadBatchesAreRefusedAndNothingIsWritten()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider(), new LogConfig { MaxMessageBytes = 500 });
        log.Append(Batches.Make(1));

        var large = Batches.Make(1, valueSize: 1000);
        Assert.Equal(ErrorCode.MessageTooLarge, Assert.Throws<KafkaProtocolException>(() => log.Append(large)).ErrorCode);

        var corrupt = Batches.Make(2);
        corrupt[^1] ^= 0xFF;
        Assert.Equal(ErrorCode.CorruptMessage, Assert.Throws<KafkaProtocolException>(() => log.Append(corrupt)).ErrorCode);

        // A good batch followed by a bad one: the whole append is refused.
        var mixed = Batches.Make(1).Concat(corrupt).ToArray();
        Assert.Equal(ErrorCode.CorruptMessage, Assert.Throws<KafkaProtocolException>(() => log.Append(mixed)).ErrorCode);

        var oldFormat = Batches.Make(1);
        oldFormat[16] = 1;
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, Assert.Throws<KafkaProtocolException>(() => log.Append(oldFormat)).ErrorCode);

        Assert.Equal(1, log.LogEndOffset);
        Assert.Single(Batches.ReadAll(log));
    }

    [Fact]
    public void LogAppendTimeRewritesTheTimestampAndTheCrc()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(1_800_000_000_000);
        using var log = Open(dir, time, new LogConfig { MessageTimestampType = TimestampType.LogAppendTime });
        var result = log.Append(Batches.Make(3, timestamp: 5));
        Assert.Equal(1_800_000_000_000, result.LogAppendTime);
        var bytes = PartitionLog.ReadBytes(log.Read(0, 1 << 20));
        var batch = RecordBatch.Parse(bytes);
        Assert.True(batch.VerifyCrc());
        Assert.Equal(TimestampType.LogAppendTime, batch.Header.TimestampType);
        Assert.All(Batches.Records(bytes), r => Assert.Equal(1_800_000_000_000, r.Timestamp));
    }

    [Fact]
    public void OffsetForTimestampFindsTheFirstRecordAtOrAfterIt()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider(), new LogConfig { IndexIntervalBytes = 1, SegmentBytes = 400 });
        for (var i = 0; i < 20; i++)
        {
            log.Append(Batches.Make(5, timestamp: 1000 + (i * 100))); // records at 1000+100i .. +4
        }

        Assert.Equal(new TimestampAndOffset(1000, 0), log.OffsetForTimestamp(0));
        Assert.Equal(new TimestampAndOffset(1502, 27), log.OffsetForTimestamp(1502));
        Assert.Equal(new TimestampAndOffset(1600, 30), log.OffsetForTimestamp(1505));
        Assert.Null(log.OffsetForTimestamp(10_000));
        Assert.Equal(new TimestampAndOffset(2904, 99), log.MaxTimestampAndOffset());
    }

    [Fact]
    public void TimestampsNeedNotIncrease()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider(), new LogConfig { IndexIntervalBytes = 1 });
        log.Append(Batches.Make(1, timestamp: 5000));
        log.Append(Batches.Make(1, timestamp: 1000));
        log.Append(Batches.Make(1, timestamp: 3000));
        Assert.Equal(new TimestampAndOffset(5000, 0), log.OffsetForTimestamp(2000));
        Assert.Equal(new TimestampAndOffset(5000, 0), log.MaxTimestampAndOffset());
    }
}
