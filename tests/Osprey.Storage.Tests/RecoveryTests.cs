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

    /// <summary>A log of three segments in a new directory (see <see cref="WriteThreeSegments"/>).</summary>
    private static (string Path, ManualTimeProvider Time, byte[] Batch, LogConfig Config) ThreeSegments(TempDirectory dir)
    {
        var path = Path.Combine(dir.Path, "t-0");
        var time = new ManualTimeProvider();
        var (batch, config) = WriteThreeSegments(path, time);
        return (path, time, batch, config);
    }

    /// <summary>Changes the bytes of the segment at offset 20 (its second batch holds offsets 30-39); returns its path and new bytes.</summary>
    private static (string File, byte[] Bytes) DamageSegment20(string path, Action<byte[]> damage)
    {
        var file = Path.Combine(path, "00000000000000000020.log");
        var bytes = File.ReadAllBytes(file);
        damage(bytes);
        File.WriteAllBytes(file, bytes);
        return (file, bytes);
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
        var (path, time, batch, config) = ThreeSegments(dir);

        // Flip a byte inside the second batch of the segment at 20 (offsets 30-39).
        DamageSegment20(path, bytes => bytes[batch.Length + 100] ^= 0x55);

        using var reopened = Open(path, time, config, clean: false);
        Assert.Equal(30, reopened.LogEndOffset);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), Batches.ReadAll(reopened).Select(r => r.Offset));
        Assert.False(File.Exists(Path.Combine(path, "00000000000000000040.log")));
    }

    [Fact]
    public void SegmentsBelowTheRecoveryPointAreTrustedAndTheRestIsScanned()
    {
        using var dir = new TempDirectory();
        var (path, time, batch, config) = ThreeSegments(dir);

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

    /// <summary>A logger that keeps its lines, to check what recovery reports.</summary>
    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add($"{logLevel}: {formatter(state, exception)}");
    }

    /// <summary>
    /// Damage below the recovery point (eight flipped bytes in a batch that was fsynced long ago, in the segment
    /// that holds the recovery point) is not a torn write: the batch is kept and reported, and nothing after it is
    /// cut — it used to truncate there and delete every later segment, silently.
    /// </summary>
    [Fact]
    public void DamageBelowTheRecoveryPointIsReportedAndDeletesNothing()
    {
        using var dir = new TempDirectory();
        var (path, time, batch, config) = ThreeSegments(dir);
        var (file, bytes) = DamageSegment20(path, bytes =>
        {
            for (var i = 0; i < 8; i++)
            {
                bytes[batch.Length + 100 + i] ^= 0x5A; // inside the batch of offsets 30-39
            }
        });
        var logger = new ListLogger();
        using var reopened = PartitionLog.Open(path, "t", 0, config, time, recoveryPoint: 35, logStartOffset: 0, cleanShutdown: false, logger: logger);
        Assert.Equal(60, reopened.LogEndOffset);
        Assert.Equal(bytes.Length, new FileInfo(file).Length);
        Assert.True(File.Exists(Path.Combine(path, "00000000000000000040.log")));
        Assert.Equal(Enumerable.Range(40, 20).Select(i => (long)i), Batches.ReadAll(reopened, 40).Select(r => r.Offset));
        Assert.Equal(Enumerable.Range(20, 10).Select(i => (long)i), Batches.Records(PartitionLog.ReadBytes(reopened.Read(20, batch.Length))).Select(r => r.Offset));
        Assert.Contains(logger.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains("below the recovery point", StringComparison.Ordinal) && l.Contains("after offset 30", StringComparison.Ordinal));
        Assert.DoesNotContain(logger.Lines, l => l.Contains("cut", StringComparison.Ordinal));

        // New appends continue after the last offset, never reusing one of the damaged batch.
        reopened.Append(Batches.Make(1));
        Assert.Equal(61, reopened.LogEndOffset);
    }

    /// <summary>Damage below the recovery point that the scan cannot step over stops the open and leaves every file as it was.</summary>
    [Fact]
    public void UnframeableDamageBelowTheRecoveryPointStopsTheOpenAndTouchesNothing()
    {
        using var dir = new TempDirectory();
        var (path, time, batch, config) = ThreeSegments(dir);
        var (file, bytes) = DamageSegment20(path, bytes => System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(batch.Length + 8), int.MaxValue)); // the length of the batch of offsets 30-39

        var e = Assert.Throws<CorruptLogException>(() => PartitionLog.Open(path, "t", 0, config, time, recoveryPoint: 55, logStartOffset: 0, cleanShutdown: false));
        Assert.Contains("below the recovery point", e.Message, StringComparison.Ordinal);
        Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.True(File.Exists(Path.Combine(path, "00000000000000000040.log")));
    }

    /// <summary>Every cut recovery makes is logged with what it removed.</summary>
    [Fact]
    public void ATornTailCutIsLoggedWithWhatItRemoved()
    {
        using var dir = new TempDirectory();
        var (path, time, batch, config) = ThreeSegments(dir);
        var file = Path.Combine(path, "00000000000000000020.log");
        using (var stream = new FileStream(file, FileMode.Open))
        {
            stream.SetLength(stream.Length - 10); // the batch of offsets 30-39 torn, past the recovery point 25
        }

        var logger = new ListLogger();
        using var reopened = PartitionLog.Open(path, "t", 0, config, time, recoveryPoint: 25, logStartOffset: 0, cleanShutdown: false, logger: logger);
        Assert.Equal(30, reopened.LogEndOffset);
        Assert.Contains(logger.Lines, l => l.Contains($"cut {batch.Length - 10} bytes from offset 30 on", StringComparison.Ordinal));
        Assert.Contains(logger.Lines, l => l.Contains("removed 1 later segments", StringComparison.Ordinal) && l.Contains("offsets 40 on", StringComparison.Ordinal));
    }
}
