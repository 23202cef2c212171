using System.Text;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

public class ProducerStateTests
{
    private static PartitionLog Open(TempDirectory dir, ManualTimeProvider time, LogConfig? config = null, bool clean = false, long recoveryPoint = 0) =>
        PartitionLog.Open(Path.Combine(dir.Path, "idem-0"), "idem", 0, config ?? new LogConfig(), time, recoveryPoint, 0, clean);

    private static byte[] Batch(long producerId, short epoch, int sequence, int count, long timestamp = 1_700_000_000_000)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence };
        for (var i = 0; i < count; i++)
        {
            builder.Append(timestamp, null, Encoding.UTF8.GetBytes($"p{producerId}-s{sequence + i}"));
        }

        return builder.ToArray();
    }

    private static ErrorCode ErrorOf(Action append) => Assert.Throws<KafkaProtocolException>(append).ErrorCode;

    [Fact]
    public void RetriesAreAnsweredWithTheirOriginalOffsetsAndGapsAreRefused()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider());
        log.Append(Batch(1, 0, 0, 3, 1_700_000_000_000));     // offsets 0-2
        log.Append(Batch(2, 0, 7, 2));                         // another producer, any first sequence: 3-4
        var second = log.Append(Batch(1, 0, 3, 2));            // 5-6

        var retry = log.Append(Batch(1, 0, 0, 3));
        Assert.Equal((true, 0L, 2L), (retry.Duplicate, retry.FirstOffset, retry.LastOffset));
        var retry2 = log.Append(Batch(1, 0, 3, 2));
        Assert.Equal((true, second.FirstOffset, second.LastOffset), (retry2.Duplicate, retry2.FirstOffset, retry2.LastOffset));
        Assert.Equal(7, log.LogEndOffset);

        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, ErrorOf(() => log.Append(Batch(1, 0, 9, 1))));
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, ErrorOf(() => log.Append(Batch(1, 1, 4, 1))));
        log.Append(Batch(1, 1, 0, 1)); // a new epoch starts again at 0
        Assert.Equal(ErrorCode.InvalidProducerEpoch, ErrorOf(() => log.Append(Batch(1, 0, 5, 1))));
        Assert.Equal(8, log.LogEndOffset);

        var producer = Assert.Single(log.ActiveProducers(), p => p.ProducerId == 1);
        Assert.Equal((1, 0), ((int)producer.Epoch, producer.LastSequence));
    }

    [Fact]
    public void SequencesWrapAroundAfterIntMax()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider());
        log.Append(Batch(3, 0, int.MaxValue - 1, 2));
        Assert.Equal(int.MaxValue, Assert.Single(log.ActiveProducers()).LastSequence);
        log.Append(Batch(3, 0, 0, 1));
        Assert.Equal(0, Assert.Single(log.ActiveProducers()).LastSequence);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void StateSurvivesACleanCloseAndACrash(bool clean)
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var config = new LogConfig { SegmentBytes = 400 };
        var log = Open(dir, time, config);
        for (var i = 0; i < 20; i++)
        {
            log.Append(Batch(9, 4, i * 2, 2));
        }

        Assert.True(log.Segments.Count > 2);
        Assert.NotEmpty(ProducerStateManager.SnapshotOffsets(log.Directory));
        var end = log.LogEndOffset;
        if (clean)
        {
            log.Close();
        }
        else
        {
            log.Flush(end);
            log.Dispose();
        }

        using var reopened = Open(dir, time, config, clean, recoveryPoint: clean ? end : 0);
        var retry = reopened.Append(Batch(9, 4, 38, 2));
        Assert.Equal((true, end - 2), (retry.Duplicate, retry.FirstOffset));
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, ErrorOf(() => reopened.Append(Batch(9, 4, 41, 1))));
        Assert.Equal(end, reopened.Append(Batch(9, 4, 40, 1)).FirstOffset);
    }

    [Fact]
    public void ACorruptSnapshotIsIgnoredAndTheStateRebuiltFromTheLog()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var log = Open(dir, time);
        log.Append(Batch(4, 0, 0, 5));
        log.Close();
        var snapshot = ProducerStateManager.SnapshotPath(Path.Combine(dir.Path, "idem-0"), 5);
        var bytes = File.ReadAllBytes(snapshot);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(snapshot, bytes);

        using var reopened = Open(dir, time, clean: true);
        Assert.True(reopened.Append(Batch(4, 0, 0, 5)).Duplicate);
        Assert.False(File.Exists(snapshot) && File.ReadAllBytes(snapshot).SequenceEqual(bytes));
    }

    [Fact]
    public void IdleProducersExpire()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        log.Append(Batch(6, 0, 0, 1));
        time.Advance(1000);
        log.Append(Batch(7, 0, 0, 1));
        time.Advance(500);
        Assert.Equal(1, log.RemoveExpiredProducers(1200));
        Assert.Equal(7, Assert.Single(log.ActiveProducers()).ProducerId);

        // Forgotten, producer 6 may start anywhere again.
        log.Append(Batch(6, 0, 57, 1));
    }

    [Fact]
    public void TimestampsOutsideTheConfiguredWindowAreInvalid()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(1_700_000_000_000);
        using var log = Open(dir, time, new LogConfig { MessageTimestampAfterMaxMs = 1000, MessageTimestampBeforeMaxMs = 60_000 });
        Assert.Equal(ErrorCode.InvalidTimestamp, ErrorOf(() => log.Append(Batches.Make(1, timestamp: time.NowMs + 5000))));
        Assert.Equal(ErrorCode.InvalidTimestamp, ErrorOf(() => log.Append(Batches.Make(1, timestamp: time.NowMs - 120_000))));
        Assert.Equal(ErrorCode.InvalidTimestamp, ErrorOf(() => log.Append(Batches.Make(2, timestamp: time.NowMs - 120_000, compression: CompressionType.Lz4))));
        log.Append(Batches.Make(1, timestamp: time.NowMs + 900));
        log.Append(Batches.Make(1, timestamp: time.NowMs - 59_000));
        Assert.Equal(2, log.LogEndOffset);

        // LogAppendTime topics ignore the producer's timestamps.
        log.Config = log.Config with { MessageTimestampType = TimestampType.LogAppendTime };
        log.Append(Batches.Make(1, timestamp: 0));
    }

    [Fact]
    public void AppendsLargerThanASegmentAreRecordListTooLarge()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider(), new LogConfig { SegmentBytes = 200 });
        Assert.Equal(ErrorCode.RecordListTooLarge, ErrorOf(() => log.Append(Batches.Make(20))));
    }
}
