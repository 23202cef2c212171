namespace Osprey.Storage.Tests;

/// <summary>After an unclean stop the log is scanned, cut at the first torn or corrupt batch, and indexes rebuilt.</summary>
public class RecoveryTests
{
    private static PartitionLog Open(string dir, ManualTimeProvider time, LogConfig config, bool clean, long recoveryPoint = 0) =>
        PartitionLog.Open(dir, "t", 0, config, time, recoveryPoint, 0, clean);

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(60)]
    [InlineData(61)]
    [InlineData(100)]
    public void ATornTailIsCutOffAndEverythingBeforeItSurvives(int bytesLost)
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var config = new LogConfig { IndexIntervalBytes = 1 };
        long sizeBeforeLast;
        using (var log = Open(path, time, config, clean: false))
        {
            for (var i = 0; i < 20; i++)
            {
                log.Append(Batches.Make(3, valueSize: 40));
            }

            sizeBeforeLast = log.ActiveSegment.Size - Batches.Make(3, valueSize: 40).Length;
        }

        var file = Path.Combine(path, "00000000000000000000.log");
        using (var stream = new FileStream(file, FileMode.Open))
        {
            stream.SetLength(stream.Length - Math.Min(bytesLost, 120));
        }

        using var reopened = Open(path, time, config, clean: false);
        var expectedRecords = bytesLost <= 120 ? 57 : 54;
        Assert.Equal(expectedRecords, reopened.LogEndOffset);
        Assert.Equal(Enumerable.Range(0, expectedRecords).Select(i => (long)i), Batches.ReadAll(reopened).Select(r => r.Offset));
        Assert.Equal(sizeBeforeLast, new FileInfo(file).Length);

        // The log goes on from where it was cut.
        reopened.Append(Batches.Make(1));
        Assert.Equal(expectedRecords + 1, reopened.LogEndOffset);
    }

    /// <summary>Six batches of ten records, two batches a segment: segments at offsets 0, 20 and 40.</summary>
    private static (byte[] Batch, LogConfig Config) WriteThreeSegments(string path, ManualTimeProvider time)
    {
        var batch = Batches.Make(10, valueSize: 30);
        var config = new LogConfig { SegmentBytes = batch.Length * 2, IndexIntervalBytes = 1 };
        using var log = Open(path, time, config, clean: false);
        for (var i = 0; i < 6; i++)
        {
            log.Append(batch);
        }

        return (batch, config);
    }

    [Fact]
    public void ACorruptBatchInTheMiddleCutsTheLogThereAndDropsLaterSegments()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var (batch, config) = WriteThreeSegments(path, time);

        // Flip a byte inside the second batch of the segment at 20 (offsets 30-39).
        var file = Path.Combine(path, "00000000000000000020.log");
        var bytes = File.ReadAllBytes(file);
        bytes[batch.Length + 100] ^= 0x55;
        File.WriteAllBytes(file, bytes);

        using var reopened = Open(path, time, config, clean: false);
        Assert.Equal(30, reopened.LogEndOffset);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), Batches.ReadAll(reopened).Select(r => r.Offset));
        Assert.False(File.Exists(Path.Combine(path, "00000000000000000040.log")));
    }

    [Fact]
    public void SegmentsBelowTheRecoveryPointAreTrustedAndTheRestIsScanned()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var (batch, config) = WriteThreeSegments(path, time);

        // Garbage appended to the active segment (a torn write) is removed; the index of a trusted segment is kept.
        File.AppendAllText(Path.Combine(path, "00000000000000000040.log"), "garbage after a crash");
        var trustedIndex = File.ReadAllBytes(Path.Combine(path, "00000000000000000000.index"));
        using var reopened = Open(path, time, config, clean: false, recoveryPoint: 40);
        Assert.Equal(60, reopened.LogEndOffset);
        Assert.Equal(trustedIndex, File.ReadAllBytes(Path.Combine(path, "00000000000000000000.index")));
        Assert.Equal(60, Batches.ReadAll(reopened).Count);
    }

    [Fact]
    public void ADamagedIndexIsRebuiltEvenAfterACleanShutdown()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var config = new LogConfig { IndexIntervalBytes = 1 };
        WriteAndClose(path, time, config, batches: 10);

        File.WriteAllBytes(Path.Combine(path, "00000000000000000000.index"), [1, 2, 3]);
        using var reopened = Open(path, time, config, clean: true);
        Assert.Equal(20, reopened.LogEndOffset);
        Assert.Equal(Enumerable.Range(10, 10).Select(i => (long)i), Batches.ReadAll(reopened, 10).Select(r => r.Offset));
    }

    [Fact]
    public void RecoveryOfAnEmptyOrMissingDirectoryGivesAnEmptyLog()
    {
        using var dir = new TempDirectory();
        using var log = Open(Path.Combine(dir.Path, "t-0"), new ManualTimeProvider(), new LogConfig(), clean: false);
        Assert.Equal(0, log.LogEndOffset);
        Assert.Single(log.Segments);
    }

    [Fact]
    public void IndexEntriesReachTheFileWhenTheSegmentRollsAndAreTrustedAfterAnUncleanStop()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var batch = Batches.Make(10, valueSize: 30);
        var config = new LogConfig { SegmentBytes = batch.Length * 4, IndexIntervalBytes = 1 };
        var firstIndex = Path.Combine(path, "00000000000000000000.index");
        var firstTimeIndex = Path.Combine(path, "00000000000000000000.timeindex");
        using (var log = Open(path, time, config, clean: false))
        {
            for (var i = 0; i < 3; i++)
            {
                log.Append(batch);
            }

            // The active segment's entries stay in memory: appends do not write the index files.
            Assert.Equal(0, new FileInfo(firstIndex).Length);
            Assert.Equal(0, new FileInfo(firstTimeIndex).Length);
            Assert.Equal(2 * batch.Length, log.Read(25, 1).Region!.Value.Position);

            log.Append(batch);
            log.Append(batch); // rolls: the segment at 0 is written out
            Assert.Equal(2, log.Segments.Count);
            Assert.Equal(3 * OffsetIndex.EntrySize, new FileInfo(firstIndex).Length);
            Assert.True(log.Segments[0].HasUnsyncedIndexes);
            log.Flush(log.LogEndOffset);
            Assert.False(log.Segments[0].HasUnsyncedIndexes);
        }

        // Unclean: the segment at 0 lies below the recovery point and is opened from its index files as they are.
        using var reopened = Open(path, time, config, clean: false, recoveryPoint: 50);
        Assert.Equal(50, reopened.LogEndOffset);
        Assert.Equal(3, reopened.Segments[0].OffsetIndex.Count);
        Assert.Equal(1_700_000_000_009, reopened.Segments[0].MaxTimestamp); // from the .timeindex written at the roll
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), Batches.ReadAll(reopened).Select(r => r.Offset));
    }

    [Fact]
    public void ACleanCloseWritesTheActiveSegmentsIndexes()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var config = new LogConfig { IndexIntervalBytes = 1 };
        WriteAndClose(path, time, config, batches: 5);

        Assert.Equal(4 * OffsetIndex.EntrySize, new FileInfo(Path.Combine(path, "00000000000000000000.index")).Length);
        using var reopened = Open(path, time, config, clean: true);
        Assert.Equal(4, reopened.ActiveSegment.OffsetIndex.Count);
        Assert.Equal(10, reopened.LogEndOffset);
    }

    /// <summary>Appends that many batches of two records, then closes the log cleanly.</summary>
    private static void WriteAndClose(string path, ManualTimeProvider time, LogConfig config, int batches)
    {
        using var log = Open(path, time, config, clean: false);
        for (var i = 0; i < batches; i++)
        {
            log.Append(Batches.Make(2));
        }

        log.Close();
    }
}
