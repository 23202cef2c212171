using System.Text;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

public class LogCleanerTests
{
    private static readonly LogConfig Compacted = new() { Compact = true, Delete = false };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PartitionLog Open(TempDirectory dir, ManualTimeProvider time, LogConfig? config = null, string topic = "compacted", bool clean = false, long recoveryPoint = 0) =>
        PartitionLog.Open(Path.Combine(dir.Path, $"{topic}-0"), topic, 0, config ?? Compacted, time, recoveryPoint, 0, clean);

    private static byte[] Utf8(string? s) => s is null ? null! : Encoding.UTF8.GetBytes(s);

    /// <summary>One batch per record, timestamped now (or at <paramref name="timestamp"/>).</summary>
    private static void Append(PartitionLog log, ManualTimeProvider time, (string? Key, string? Value)[] records, long? timestamp = null)
    {
        foreach (var (key, value) in records)
        {
            using var builder = new RecordBatchBuilder();
            builder.Append(timestamp ?? time.NowMs, key is null ? null : Utf8(key), value is null ? null : Utf8(value));
            log.Append(builder.ToArray());
        }
    }

    private static (string? Key, string? Value)[] Kv(params string?[] pairs) =>
        Enumerable.Range(0, pairs.Length / 2).Select(i => (pairs[2 * i], pairs[(2 * i) + 1])).ToArray();

    /// <summary>Every batch of the log: its header and its records as (offset, key, value).</summary>
    private static List<(RecordBatchHeader Header, List<(long Offset, string? Key, string? Value)> Records)> ReadBatches(PartitionLog log)
    {
        var result = new List<(RecordBatchHeader, List<(long, string?, string?)>)>();
        var offset = log.LogStartOffset;
        using var buffer = new PooledBufferWriter();
        while (offset < log.LogEndOffset)
        {
            var read = log.Read(offset, 1 << 20);
            if (read.Region is null)
            {
                break;
            }

            var bytes = PartitionLog.ReadBytes(read);
            foreach (var batch in RecordBatch.Enumerate(bytes))
            {
                Assert.True(batch.VerifyCrc());
                var records = new List<(long, string?, string?)>();
                foreach (var record in batch.GetRecords(buffer))
                {
                    records.Add((record.Offset, record.IsKeyNull ? null : Encoding.UTF8.GetString(record.Key), record.IsValueNull ? null : Encoding.UTF8.GetString(record.Value)));
                }

                result.Add((batch.Header, records));
                offset = Math.Max(offset, batch.Header.NextOffset);
            }
        }

        return result;
    }

    private static List<(long Offset, string? Key, string? Value)> Records(PartitionLog log) =>
        Batches.ReadAll(log).Select(r => (r.Offset, r.Key, r.Value)).ToList();

    /// <summary>The example: offsets 0–10 in closed segments, 11 in the active one.</summary>
    private static void WriteSeedExample(PartitionLog log, ManualTimeProvider time)
    {
        string[] keys = ["K1", "K2", "K1", "K1", "K3", "K2", "K4", "K5", "K5", "K2", "K6", "K2"];
        for (var i = 0; i < keys.Length; i++)
        {
            if (i is 6 or 11)
            {
                log.Roll();
            }

            Append(log, time, [(keys[i], $"V{i + 1}")]);
        }
    }

    [Fact]
    public void SeedExampleCompactsToTheLatestRecordOfEachKey()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        WriteSeedExample(log, time);
        Assert.Equal([0L, 6, 11], log.Segments.Select(s => s.BaseOffset));

        var cleaner = new LogCleaner(() => [log], time);
        var result = cleaner.RunOnce(Ct);

        Assert.NotNull(result);
        Assert.True(result.Completed);
        Assert.Same(log, result.Log);
        Assert.Equal((0L, 11L), (result.FirstDirtyOffset, result.EndOffset));
        Assert.Equal((2, 1), (result.SegmentsReplaced, result.SegmentsWritten));
        Assert.Equal((11L, 6L), (result.RecordsRead, result.RecordsRetained));
        var records = Records(log);
        Assert.Equal([3L, 4, 6, 8, 9, 10, 11], records.Select(r => r.Offset));
        Assert.Equal(["V4", "V5", "V7", "V9", "V10", "V11", "V12"], records.Select(r => r.Value));
        Assert.Equal(["K1", "K3", "K4", "K5", "K2", "K6", "K2"], records.Select(r => r.Key));
        Assert.Equal([0L, 11], log.Segments.Select(s => s.BaseOffset));
        Assert.Equal((0L, 12L, 11L), (log.LogStartOffset, log.LogEndOffset, log.CleanerCheckpoint));

        // Nothing is dirty any more.
        Assert.Null(cleaner.RunOnce(Ct));
    }

    [Fact]
    public void ReadsByOffsetFindTheNextKeptRecordAfterCompaction()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        WriteSeedExample(log, time);
        new LogCleaner(() => [log], time).RunOnce(Ct);

        // Offset 0 was removed: a read from it starts at the first kept batch; so does one from a gap.
        Assert.Equal(3, Batches.Records(PartitionLog.ReadBytes(log.Read(0, 1 << 20)))[0].Offset);
        Assert.Equal(6, Batches.Records(PartitionLog.ReadBytes(log.Read(5, 1 << 20)))[0].Offset);
        Assert.Equal(11, Batches.Records(PartitionLog.ReadBytes(log.Read(11, 1 << 20)))[0].Offset);
        Assert.Equal([9L, 10, 11], Batches.ReadAll(log, 9).Select(r => r.Offset));
        Assert.Equal(["V10", "V11", "V12"], Batches.ReadAll(log, 9).Select(r => r.Value));
    }

    [Fact]
    public void TombstonesStayUntilDeleteRetentionMsAfterTheirFirstCleaning()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { DeleteRetentionMs = 1000 });
        var cleaner = new LogCleaner(() => [log], time);
        Append(log, time, Kv("K1", "V1", "K2", "V2", "K1", null));
        log.Roll();
        Append(log, time, Kv("K3", "V3"));

        var cleanedAt = time.NowMs;
        Assert.NotNull(cleaner.RunOnce(Ct));
        Assert.Equal([(1L, "K2", "V2"), (2L, "K1", null), (3L, "K3", "V3")], Records(log));
        var tombstoneBatch = ReadBatches(log).Single(b => b.Records.Any(r => r.Offset == 2)).Header;
        Assert.True(tombstoneBatch.HasDeleteHorizonMs);
        Assert.Equal(cleanedAt + 1000, tombstoneBatch.DeleteHorizonMs);
        Assert.Equal(cleanedAt, ReadBatches(log)[0].Header.MaxTimestamp); // record timestamps survive the horizon
        Assert.False(ReadBatches(log)[0].Header.HasDeleteHorizonMs);

        // Before the horizon, a cleaning keeps the tombstone (and its horizon).
        time.Advance(999);
        log.Roll();
        Append(log, time, Kv("K4", "V4"));
        Assert.True(cleaner.Clean(log, Ct).Completed);
        Assert.Contains((2L, "K1", null), Records(log));
        Assert.Equal(cleanedAt + 1000, ReadBatches(log).Single(b => b.Records.Any(r => r.Offset == 2)).Header.DeleteHorizonMs);

        // After it, the next cleaning removes it.
        time.Advance(1);
        log.Roll();
        Append(log, time, Kv("K5", "V5"));
        Assert.True(cleaner.Clean(log, Ct).Completed);
        Assert.Equal([(1L, "K2", "V2"), (3L, "K3", "V3"), (4L, "K4", "V4"), (5L, "K5", "V5")], Records(log));
    }

    [Fact]
    public void ATombstoneRemovesTheOlderValuesOfItsKey()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { DeleteRetentionMs = 0 });
        var cleaner = new LogCleaner(() => [log], time);
        Append(log, time, Kv("K1", "V1", "K1", "V2"));
        log.Roll();
        Append(log, time, Kv("K1", null, "K2", "V3"));
        log.Roll();
        Append(log, time, Kv("K3", "V4"));

        cleaner.RunOnce(Ct);
        Assert.Equal([(2L, "K1", null), (3L, "K2", "V3"), (4L, "K3", "V4")], Records(log));

        // delete.retention.ms = 0: the horizon is the first cleaning's time, so the next cleaning drops it.
        time.Advance(1);
        log.Roll();
        Append(log, time, Kv("K4", "V5"));
        cleaner.Clean(log, Ct);
        Assert.Equal([(3L, "K2", "V3"), (4L, "K3", "V4"), (5L, "K4", "V5")], Records(log));
    }

    [Fact]
    public void MinCompactionLagHoldsBackYoungSegments()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { MinCompactionLagMs = 10_000 });
        var cleaner = new LogCleaner(() => [log], time);
        Append(log, time, Kv("K1", "old-1", "K1", "old-2"), timestamp: time.NowMs - 20_000);
        log.Roll();
        Append(log, time, Kv("K1", "young-1", "K2", "young-2"));
        log.Roll();
        Append(log, time, Kv("K3", "active"));

        // Only the first segment is old enough.
        var state = Assert.Single(cleaner.Inspect());
        Assert.Equal(2, state.FirstUncleanableOffset);
        var result = cleaner.RunOnce(Ct);
        Assert.NotNull(result);
        Assert.Equal(2, result.EndOffset);
        Assert.Equal([(1L, "K1", "old-2"), (2L, "K1", "young-1"), (3L, "K2", "young-2"), (4L, "K3", "active")], Records(log));
        Assert.Null(cleaner.RunOnce(Ct));

        // Once it has aged past the lag, the second segment is cleaned too.
        time.Advance(10_001);
        Assert.Equal(4, Assert.Single(cleaner.Inspect()).FirstUncleanableOffset);
        Assert.NotNull(cleaner.RunOnce(Ct));
        Assert.Equal([(2L, "K1", "young-1"), (3L, "K2", "young-2"), (4L, "K3", "active")], Records(log));
    }

    [Fact]
    public void MaxCompactionLagForcesCleaningBelowTheDirtyRatio()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { MinCleanableDirtyRatio = 0.9 });
        var cleaner = new LogCleaner(() => [log], time);
        Append(log, time, Kv("K1", "V1", "K2", "V2", "K3", "V3", "K4", "V4"));
        log.Roll();
        Append(log, time, Kv("K5", "V5"));
        Assert.NotNull(cleaner.RunOnce(Ct)); // the first cleaning: all dirty
        log.Roll();
        Append(log, time, Kv("K6", "V6"));

        // One dirty record against four clean ones: well below 0.9.
        var state = Assert.Single(cleaner.Inspect());
        Assert.InRange(state.DirtyRatio, 0.1, 0.3);
        Assert.False(state.IsCleanable);
        Assert.Null(cleaner.RunOnce(Ct));

        log.Config = log.Config with { MaxCompactionLagMs = 5_000 };
        time.Advance(5_000);
        Assert.Null(cleaner.RunOnce(Ct)); // not yet past the lag
        time.Advance(1);
        state = Assert.Single(cleaner.Inspect());
        Assert.True(state.MustCleanNow);
        Assert.True(state.IsCleanable);
        var result = cleaner.RunOnce(Ct);
        Assert.NotNull(result);
        Assert.Equal(5, result.EndOffset);
        Assert.Equal(5, log.CleanerCheckpoint);
    }

    [Fact]
    public void MaxCompactionLagRollsTheActiveSegment()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { MaxCompactionLagMs = 1_000 });
        Append(log, time, Kv("K1", "V1"));
        time.Advance(1_000);
        Append(log, time, Kv("K1", "V2"));
        Assert.Equal([0L, 1], log.Segments.Select(s => s.BaseOffset));
    }

    [Fact]
    public void TheDirtiestLogIsCleanedFirst()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var a = Open(dir, time, topic: "a");
        using var b = Open(dir, time, topic: "b");
        var cleaner = new LogCleaner(() => [b, a], time);

        // b: cleaned once, then a little more than as much dirty data: a ratio above 0.5 but below 1.
        Append(b, time, Kv("K1", "V1", "K2", "V2"));
        b.Roll();
        Append(b, time, Kv("K9", "active"));
        cleaner.Clean(b, Ct);
        b.Roll();
        Append(b, time, Kv("K1", "V3", "K2", "V4", "K3", "V5"));
        b.Roll();
        Append(b, time, Kv("K9", "active"));

        // a: never cleaned, all dirty.
        Append(a, time, Kv("K1", "V1", "K1", "V2"));
        a.Roll();
        Append(a, time, Kv("K9", "active"));

        var states = cleaner.Inspect().ToDictionary(s => s.Log.Topic);
        Assert.Equal(1.0, states["a"].DirtyRatio);
        Assert.InRange(states["b"].DirtyRatio, 0.5001, 0.99);

        Assert.Same(a, cleaner.RunOnce(Ct)?.Log);
        Assert.Same(b, cleaner.RunOnce(Ct)?.Log);
        Assert.Null(cleaner.RunOnce(Ct));
        Assert.Equal([(1L, "K1", "V2"), (2L, "K9", "active")], Records(a));
        Assert.Equal([(2L, "K9", "active"), (3L, "K1", "V3"), (4L, "K2", "V4"), (5L, "K3", "V5"), (6L, "K9", "active")], Records(b));
    }

    [Fact]
    public void ALogPastMaxCompactionLagGoesBeforeADirtierOne()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var dirty = Open(dir, time, topic: "dirty");
        using var overdue = Open(dir, time, Compacted with { MinCleanableDirtyRatio = 0.99, MaxCompactionLagMs = 60_000 }, topic: "overdue");
        var cleaner = new LogCleaner(() => [dirty, overdue], time);
        Append(overdue, time, Kv("K1", "V1", "K2", "V2", "K3", "V3"), timestamp: time.NowMs - 120_000);
        overdue.Roll();
        Append(overdue, time, Kv("K9", "active"));
        cleaner.Clean(overdue, Ct);
        overdue.Roll();
        Append(overdue, time, Kv("K1", "V4"), timestamp: time.NowMs - 61_000);
        overdue.Roll();
        Append(overdue, time, Kv("K9", "active"));

        Append(dirty, time, Kv("K1", "V1", "K1", "V2"));
        dirty.Roll();
        Append(dirty, time, Kv("K9", "active"));

        var states = cleaner.Inspect().ToDictionary(s => s.Log.Topic);
        Assert.True(states["overdue"].DirtyRatio < states["dirty"].DirtyRatio);
        Assert.True(states["overdue"].MustCleanNow);
        Assert.Same(overdue, cleaner.RunOnce(Ct)?.Log);
        Assert.Same(dirty, cleaner.RunOnce(Ct)?.Log);
    }

    [Fact]
    public void TheActiveSegmentIsNeverTouched()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        var cleaner = new LogCleaner(() => [log], time);
        Append(log, time, Kv("K1", "V1", "K1", "V2", "K1", "V3"));

        // Everything is in the active segment: nothing is cleanable.
        Assert.Equal(0, Assert.Single(cleaner.Inspect()).DirtyBytes);
        Assert.Null(cleaner.RunOnce(Ct));
        Assert.Equal(0, cleaner.Clean(log, Ct).SegmentsReplaced);
        Assert.Equal(3, Records(log).Count);

        log.Roll();
        Append(log, time, Kv("K1", "V4", "K1", "V5"));
        var active = log.ActiveSegment;
        var activeBytes = File.ReadAllBytes(active.LogPath);
        Assert.NotNull(cleaner.RunOnce(Ct));
        Assert.Same(active, log.ActiveSegment);
        Assert.Equal(activeBytes, File.ReadAllBytes(active.LogPath));

        // The map covers the cleanable range only: V3 stays although the active segment has newer K1 records.
        Assert.Equal([(2L, "K1", "V3"), (3L, "K1", "V4"), (4L, "K1", "V5")], Records(log));
    }

    [Fact]
    public void ReopeningAfterACleaningGivesTheSameRecords()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var log = Open(dir, time);
        WriteSeedExample(log, time);
        new LogCleaner(() => [log], time).RunOnce(Ct);
        var expected = Records(log);
        log.DeletePendingFiles(force: true);
        log.Close();

        using (var reopened = Open(dir, time, clean: true))
        {
            Assert.Equal(expected, Records(reopened));
            Assert.Equal(12, reopened.LogEndOffset);
        }

        // An unclean stop: every segment is recovered from its bytes.
        using (var recovered = Open(dir, time, clean: false, recoveryPoint: 0))
        {
            Assert.Equal(expected, Records(recovered));
            Assert.Equal(12, recovered.LogEndOffset);
            Append(recovered, time, Kv("K7", "V13"));
            Assert.Equal(12, Records(recovered)[^1].Offset);
        }
    }

    [Fact]
    public void ReadersKeepTheOldSegmentsUntilTheDeleteDelay()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { FileDeleteDelayMs = 60_000 });
        WriteSeedExample(log, time);
        var before = log.Read(0, 1 << 20);
        Assert.NotNull(new LogCleaner(() => [log], time).RunOnce(Ct));

        // A fetch that found its region before the swap still reads the old bytes.
        Assert.Equal([0L, 1, 2, 3, 4, 5], Batches.Records(PartitionLog.ReadBytes(before)).Select(r => r.Offset));
        Assert.Contains(Directory.GetFiles(log.Directory), f => f.EndsWith(".log.deleted", StringComparison.Ordinal));
        log.DeletePendingFiles(force: false);
        Assert.Equal(6, Batches.Records(PartitionLog.ReadBytes(before)).Count);

        time.Advance(60_000);
        log.ApplyRetention();
        Assert.DoesNotContain(Directory.GetFiles(log.Directory), f => f.EndsWith(".deleted", StringComparison.Ordinal));
        Assert.Equal(3, Batches.Records(PartitionLog.ReadBytes(log.Read(0, 1 << 20)))[0].Offset);
    }

    /// <summary>Where a crash stopped a cleaning's swap.</summary>
    public enum CrashPoint
    {
        /// <summary>The cleaned files are written but not renamed to .swap: not committed.</summary>
        BeforeCommit,

        /// <summary>The marker is written but the swap rename has not happened: not committed.</summary>
        MarkerWithoutSwap,

        /// <summary>The index files are renamed to .swap but not the log: not committed.</summary>
        IndexesSwappedLogNot,

        /// <summary>The .swap files and the marker exist: committed, nothing else done.</summary>
        AfterCommit,

        /// <summary>Committed, and the replaced segments already renamed to .deleted.</summary>
        OldSegmentsRenamed,

        /// <summary>Committed, old segments renamed, the new indexes already live but not the new log.</summary>
        IndexesLive,

        /// <summary>A .swap log without its marker: the swap covers the offsets its batches span.</summary>
        SwapWithoutMarker,
    }

    [Theory]
    [InlineData(CrashPoint.BeforeCommit, false)]
    [InlineData(CrashPoint.MarkerWithoutSwap, false)]
    [InlineData(CrashPoint.IndexesSwappedLogNot, false)]
    [InlineData(CrashPoint.AfterCommit, true)]
    [InlineData(CrashPoint.OldSegmentsRenamed, true)]
    [InlineData(CrashPoint.IndexesLive, true)]
    [InlineData(CrashPoint.SwapWithoutMarker, true)]
    public void ACrashDuringTheSwapLeavesAConsistentLog(CrashPoint crash, bool compacted)
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var original = Path.Combine(dir.Path, "original");
        var crashed = Path.Combine(dir.Path, "crashed");
        List<(long, string?, string?)> originalRecords, compactedRecords;
        using (var log = Open(dir, time))
        {
            WriteSeedExample(log, time);
            log.Flush(log.LogEndOffset);
            originalRecords = Records(log);
            CopyFiles(log.Directory, original, _ => true);
            new LogCleaner(() => [log], time).RunOnce(Ct);
            compactedRecords = Records(log);

            // The cleaned segment (base 0, replacing segments 0 and 6 up to 11) as the cleaner wrote it.
            CopyFiles(log.Directory, crashed, name => name.StartsWith(LogSegment.FileName(0, ""), StringComparison.Ordinal) && !name.EndsWith(".deleted", StringComparison.Ordinal));
        }

        // Rebuild the directory as the crash left it: the originals plus the cleaned files under their names then.
        var logDir = Path.Combine(dir.Path, "restored-0");
        Directory.CreateDirectory(logDir);
        CopyFiles(original, logDir, _ => true);
        string Live(long baseOffset, string kind) => Path.Combine(logDir, LogSegment.FileName(baseOffset, kind));
        string New(string kind) => Path.Combine(crashed, LogSegment.FileName(0, kind));
        void Put(string kind, string suffix) => File.Copy(New(kind), Live(0, kind) + suffix, overwrite: true);
        void Marker() => File.WriteAllText(Live(0, LogSegment.LogSuffix) + LogSegment.SwapSuffix + LogSegment.CoversSuffix, "11");
        void RenameOld()
        {
            foreach (var baseOffset in new long[] { 0, 6 })
            {
                foreach (var kind in new[] { LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix })
                {
                    File.Move(Live(baseOffset, kind), Live(baseOffset, kind) + LogSegment.DeletedSuffix);
                }
            }
        }

        string[] kinds = [LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix];
        switch (crash)
        {
            case CrashPoint.BeforeCommit:
                Array.ForEach(kinds, k => Put(k, LogSegment.CleanedSuffix));
                break;
            case CrashPoint.MarkerWithoutSwap:
                Array.ForEach(kinds, k => Put(k, LogSegment.CleanedSuffix));
                Marker();
                break;
            case CrashPoint.IndexesSwappedLogNot:
                Put(LogSegment.LogSuffix, LogSegment.CleanedSuffix);
                Put(LogSegment.IndexSuffix, LogSegment.SwapSuffix);
                Put(LogSegment.TimeIndexSuffix, LogSegment.SwapSuffix);
                Marker();
                break;
            case CrashPoint.AfterCommit:
                Marker();
                Array.ForEach(kinds, k => Put(k, LogSegment.SwapSuffix));
                break;
            case CrashPoint.OldSegmentsRenamed:
                Marker();
                Array.ForEach(kinds, k => Put(k, LogSegment.SwapSuffix));
                RenameOld();
                break;
            case CrashPoint.IndexesLive:
                Marker();
                RenameOld();
                Put(LogSegment.IndexSuffix, "");
                Put(LogSegment.TimeIndexSuffix, "");
                Put(LogSegment.LogSuffix, LogSegment.SwapSuffix);
                break;
            case CrashPoint.SwapWithoutMarker:
                Array.ForEach(kinds, k => Put(k, LogSegment.SwapSuffix));
                break;
        }

        foreach (var cleanShutdown in new[] { false, true })
        {
            using var reopened = PartitionLog.Open(logDir, "restored", 0, Compacted, time, recoveryPoint: 12, cleanShutdown: cleanShutdown);
            Assert.Equal(compacted ? compactedRecords : originalRecords, Records(reopened));
            Assert.Equal(12, reopened.LogEndOffset);
            Assert.Equal(compacted ? new long[] { 0, 11 } : [0, 6, 11], reopened.Segments.Select(s => s.BaseOffset));
            var names = Directory.GetFiles(logDir).Select(Path.GetFileName).ToList();
            Assert.DoesNotContain(names, n => n!.EndsWith(".cleaned", StringComparison.Ordinal) || n.EndsWith(".swap", StringComparison.Ordinal)
                || n.EndsWith(".covers", StringComparison.Ordinal) || n.EndsWith(".deleted", StringComparison.Ordinal));
        }
    }

    private static void CopyFiles(string from, string to, Func<string, bool> include)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            var name = Path.GetFileName(file);
            if (include(name))
            {
                File.Copy(file, Path.Combine(to, name), overwrite: true);
            }
        }
    }

    [Fact]
    public void CompactDeleteAppliesCompactionAndRetention()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        // Small segments, so the cleaner cannot merge the two closed ones (which would delay retention).
        using var log = Open(dir, time, new LogConfig { Compact = true, Delete = true, RetentionMs = 10_000, SegmentBytes = 3 * BatchSize("K1", "V1") });
        Append(log, time, Kv("K1", "V1", "K1", "V2", "K2", "V3"));
        log.Roll();
        time.Advance(5_000);
        Append(log, time, Kv("K2", "V4", "K3", "V5"));
        log.Roll();
        Append(log, time, Kv("K4", "active"));

        Assert.NotNull(new LogCleaner(() => [log], time).RunOnce(Ct));
        Assert.Equal([(1L, "K1", "V2"), (3L, "K2", "V4"), (4L, "K3", "V5"), (5L, "K4", "active")], Records(log));

        // Retention still deletes whole expired segments, cleaned ones included.
        time.Advance(5_001);
        Assert.Equal(1, log.ApplyRetention());
        Assert.Equal(3, log.LogStartOffset);
        Assert.Equal([(3L, "K2", "V4"), (4L, "K3", "V5"), (5L, "K4", "active")], Records(log));
    }

    [Fact]
    public void CompactedTopicsRefuseRecordsWithoutKeysAndTheCleanerDropsThem()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        using (var builder = new RecordBatchBuilder())
        {
            builder.Append(time.NowMs, Utf8("K1"), Utf8("V1"));
            builder.Append(time.NowMs, null, Utf8("no key"));
            var error = Assert.Throws<KafkaProtocolException>(() => log.Append(builder.ToArray()));
            Assert.Equal(ErrorCode.InvalidRecord, error.ErrorCode);
            Assert.Equal($"Compacted topic cannot accept message without key in topic partition {log.Topic}-0", error.Message); // Kafka's words
            Assert.Equal(0, log.LogEndOffset);

            // Replication writes batches as they are (the topic may have been compacted only later).
            log.Append(builder.ToArray(), AppendOrigin.Replication);
        }

        log.Roll();
        Append(log, time, Kv("K2", "V2"));
        new LogCleaner(() => [log], time).RunOnce(Ct);
        Assert.Equal([(0L, "K1", "V1"), (2L, "K2", "V2")], Records(log));
    }

    [Fact]
    public void CompressedBatchesKeepTheirCodecOffsetsAndLastOffsetDelta()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        using (var builder = new RecordBatchBuilder(CompressionType.Gzip))
        {
            foreach (var (key, value) in Kv("K1", "V1", "K2", "V2", "K1", "V3", "K3", "V4", "K1", "V5", "K2", "V6"))
            {
                builder.Append(time.NowMs, Utf8(key!), Utf8(value!), [new Header("h", Utf8(value!))]);
            }

            log.Append(builder.ToArray());
        }

        log.Roll();
        Append(log, time, Kv("K2", "V7"));
        new LogCleaner(() => [log], time).RunOnce(Ct);

        var batches = ReadBatches(log);
        var cleaned = batches[0];
        Assert.Equal(CompressionType.Gzip, cleaned.Header.Compression);
        Assert.Equal((0L, 5, 3), (cleaned.Header.BaseOffset, cleaned.Header.LastOffsetDelta, cleaned.Header.RecordCount));
        Assert.Equal([(3L, "K3", "V4"), (4L, "K1", "V5"), (5L, "K2", "V6")], cleaned.Records);

        // Headers come through byte for byte.
        var bytes = PartitionLog.ReadBytes(log.Read(0, 1 << 20));
        using var buffer = new PooledBufferWriter();
        var values = new List<string>();
        foreach (var record in RecordBatch.Parse(bytes).GetRecords(buffer))
        {
            foreach (var header in record.Headers)
            {
                values.Add(header.GetKeyString() + "=" + Encoding.UTF8.GetString(header.Value));
            }
        }

        Assert.Equal(["h=V4", "h=V5", "h=V6"], values);
    }

    private static byte[] ProducerBatch(long producerId, short epoch, int sequence, bool transactional, params (string Key, string Value)[] records)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence, IsTransactional = transactional };
        foreach (var (key, value) in records)
        {
            builder.Append(1_700_000_000_000, Utf8(key), Utf8(value));
        }

        return builder.ToArray();
    }

    [Fact]
    public void AProducersLastBatchStaysAsAnEmptyBatchWhenAllItsRecordsGo()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        log.Append(ProducerBatch(5, 2, 0, false, ("K1", "a"), ("K2", "b")));
        log.Append(ProducerBatch(5, 2, 2, false, ("K1", "c"), ("K2", "d")));
        Append(log, time, Kv("K1", "e", "K2", "f"));
        log.Roll();
        Append(log, time, Kv("K9", "active"));

        new LogCleaner(() => [log], time).RunOnce(Ct);
        var batches = ReadBatches(log);

        // The first batch of producer 5 is gone; its last one stays, empty, with its offsets and sequence.
        var empty = batches[0].Header;
        Assert.Empty(batches[0].Records);
        Assert.Equal((2L, 1, 0), (empty.BaseOffset, empty.LastOffsetDelta, empty.RecordCount));
        Assert.Equal((5L, (short)2, 2, 3), (empty.ProducerId, empty.ProducerEpoch, empty.BaseSequence, empty.LastSequence));
        Assert.Equal([(4L, "K1", "e"), (5L, "K2", "f"), (6L, "K9", "active")], Records(log));

        // Once producer 5 writes again, it is no longer the last batch and the next cleaning drops it.
        log.Append(ProducerBatch(5, 2, 4, false, ("K3", "g")));
        log.Roll();
        Append(log, time, Kv("K9", "active-2"));
        new LogCleaner(() => [log], time).Clean(log, Ct);
        Assert.DoesNotContain(ReadBatches(log), b => b.Header.RecordCount == 0);
    }

    [Fact]
    public void AbortedTransactionsAreRemovedOpenOnesKeptAndMarkersKept()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        Append(log, time, Kv("K1", "plain"));                                                          // 0
        log.Append(ProducerBatch(7, 0, 0, true, ("K1", "aborted")));                                   // 1
        log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(ControlRecordType.Abort, 3), 7, 0, time.NowMs), AppendOrigin.Coordinator);   // 2
        log.Append(ProducerBatch(8, 0, 0, true, ("K2", "committed-old"), ("K2", "committed")));       // 3-4
        log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(ControlRecordType.Commit, 3), 8, 0, time.NowMs), AppendOrigin.Coordinator);  // 5
        log.Roll();
        log.Append(ProducerBatch(9, 0, 0, true, ("K1", "open"), ("K1", "open-2")));                   // 6-7
        Append(log, time, Kv("K3", "plain"));                                                          // 8
        log.Roll();
        Append(log, time, Kv("K9", "active"));                                                         // 9

        // The open transaction holds back its segment, as the last stable offset would.
        var first = new LogCleaner(() => [log], time).RunOnce(Ct);
        Assert.Equal(6, first?.EndOffset);
        var batches = ReadBatches(log);
        var summary = batches.Select(b => (b.Header.BaseOffset, b.Header.IsControlBatch, b.Records.Select(r => r.Value).ToArray())).ToList();

        // K1=plain stays: the aborted K1 never enters the map. The aborted batch is producer 7's last: it stays,
        // empty. The committed transaction is compacted like any data.
        Assert.Equal(0L, summary[0].BaseOffset);
        Assert.Equal(["plain"], summary[0].Item3);
        Assert.Equal((1L, false), (summary[1].BaseOffset, summary[1].IsControlBatch));
        Assert.Empty(summary[1].Item3);
        Assert.Equal((2L, true), (summary[2].BaseOffset, summary[2].IsControlBatch));
        Assert.Equal((3L, false), (summary[3].BaseOffset, summary[3].IsControlBatch));
        Assert.Equal(["committed"], summary[3].Item3);
        Assert.Equal((5L, true), (summary[4].BaseOffset, summary[4].IsControlBatch));
        Assert.Equal(["open", "open-2"], summary[5].Item3); // not cleaned yet
        Assert.Equal(["plain"], summary[6].Item3);
        Assert.Equal(["active"], summary[7].Item3);

        // Once the open transaction commits, its last K1 replaces both the plain K1 and its own first record.
        log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(ControlRecordType.Commit, 3), 9, 0, time.NowMs), AppendOrigin.Coordinator);
        log.Roll();
        Append(log, time, Kv("K9", "active-2"));
        new LogCleaner(() => [log], time).Clean(log, Ct);
        var values = ReadBatches(log).SelectMany(b => b.Header.IsControlBatch ? [] : b.Records.Select(r => r.Value)).ToList();
        Assert.Equal(["committed", "open-2", "plain", "active", "active-2"], values);
    }

    [Fact]
    public void MarkersOutliveTheirTransactionsDataByTheDeleteRetentionAndKeepTheirAbortedIndexEntryMeanwhile()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, Compacted with { DeleteRetentionMs = 60_000 });
        log.Append(ProducerBatch(7, 0, 0, true, ("K1", "aborted")));                                   // 0
        log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(ControlRecordType.Abort, 3), 7, 0, time.NowMs), AppendOrigin.Coordinator);   // 1
        log.Append(ProducerBatch(8, 0, 0, true, ("K2", "committed")));                                 // 2
        log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(ControlRecordType.Commit, 3), 8, 0, time.NowMs), AppendOrigin.Coordinator);  // 3
        log.Append(ProducerBatch(7, 0, 1, false, ("K9", "later")));                                    // 4: producers 7 and 8 write
        log.Append(ProducerBatch(8, 0, 1, false, ("K2", "newer")));                                    // 5  again, non-transactionally
        log.Roll();
        Append(log, time, Kv("K8", "active"));                                                         // 6
        var cleaner = new LogCleaner(() => [log], time);
        (long, long, long)[] Aborted() => [.. log.AbortedTransactions(0, log.LogEndOffset).Select(a => (a.ProducerId, a.FirstOffset, a.LastOffset))];
        List<(long Offset, long? Horizon)> Markers() => [.. ReadBatches(log).Where(b => b.Header.IsControlBatch).Select(b => (b.Header.BaseOffset, b.Header.DeleteHorizonMs))];
        var pass = 0;
        void Clean()
        {
            // Each pass needs something dirty: a newer value of K8 in a closed segment.
            Append(log, time, Kv("K8", $"active-{++pass}"));
            log.Roll();
            cleaner.Clean(log, Ct);
        }

        // Pass 1 removes the aborted record and the overwritten committed one; their markers stay, and so does the
        // aborted transaction's index entry in the cleaned segment.
        Clean();
        Assert.Equal([(1L, (long?)null), (3L, null)], Markers());
        Assert.DoesNotContain(ReadBatches(log), b => b.Header.BaseOffset is 0 or 2);
        Assert.Equal([(7L, 0L, 1L)], Aborted());

        // Pass 2 finds no batch of either transaction: the markers get a delete horizon.
        Clean();
        var horizon = time.NowMs + 60_000;
        Assert.Equal([(1L, (long?)horizon), (3L, horizon)], Markers());
        Assert.Equal([(7L, 0L, 1L)], Aborted());
        var marker = ReadBatches(log)[0].Header;
        Assert.Equal((1L, 7L, (short)0, true), (marker.BaseOffset, marker.ProducerId, marker.ProducerEpoch, marker.IsTransactional));

        // Before the horizon they stay; after it they go, and the index entry with them.
        time.Advance(59_999);
        Clean();
        Assert.Equal(2, Markers().Count);
        time.Advance(1);
        Clean();
        Assert.Empty(Markers());
        Assert.Empty(Aborted());

        // All of it holds after the log is reopened.
        log.Dispose();
        using var reopened = Open(dir, time, Compacted with { DeleteRetentionMs = 60_000 });
        Assert.Empty(reopened.AbortedTransactions(0, reopened.LogEndOffset));
        Assert.Equal(reopened.LogEndOffset, reopened.LastStableOffset);
        Assert.Equal([(4L, "K9", "later"), (5L, "K2", "newer"), (10L, "K8", "active-4")], Records(reopened));
    }

    private static int BatchSize(string key, string value)
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1_700_000_000_000, Utf8(key), Utf8(value));
        return builder.ToArray().Length;
    }

    [Fact]
    public void SegmentsEmptiedByCleaningAreMergedWithinSegmentBytes()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var one = BatchSize("K1", "V10");
        using var log = Open(dir, time, Compacted with { SegmentBytes = 4 * one });
        for (var i = 0; i < 16; i++)
        {
            Append(log, time, [("K1", $"V{10 + i}")]);
        }

        log.Roll();
        Append(log, time, Kv("K9", "V99"));
        Assert.Equal([0L, 4, 8, 12, 16], log.Segments.Select(s => s.BaseOffset));

        // Full segments cannot be merged: each is cleaned on its own, three of them to nothing.
        var cleaner = new LogCleaner(() => [log], time);
        Assert.Equal(4, cleaner.RunOnce(Ct)?.SegmentsReplaced);
        Assert.Null(cleaner.RunOnce(Ct));
        Assert.Equal([0L, 4, 8, 12, 16], log.Segments.Select(s => s.BaseOffset));
        Assert.Equal([0L, 0, 0, one], log.Segments.Take(4).Select(s => s.Size));
        Assert.Equal([(15L, "K1", "V25"), (16L, "K9", "V99")], Records(log));

        // The next cleaning merges what now fits in one segment.
        Append(log, time, Kv("K2", "V30"));
        log.Roll();
        Append(log, time, Kv("K8", "V31"));
        Assert.True(cleaner.Clean(log, Ct).Completed);
        Assert.Equal([0L, 18], log.Segments.Select(s => s.BaseOffset));
        Assert.All(log.Segments, s => Assert.True(s.Size <= 4 * one));
        Assert.Equal([(15L, "K1", "V25"), (16L, "K9", "V99"), (17L, "K2", "V30"), (18L, "K8", "V31")], Records(log));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheLogManagerKeepsTheCleanerCheckpointAndRunsTheCleaner()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var options = new LogManagerOptions { Cleaner = new LogCleanerOptions { BackoffMs = 10 } };
        var checkpointFile = Path.Combine(dir.Path, Checkpoints.CleanerOffsetFile);
        var manager = new LogManager(dir.Path, options, time);
        try
        {
            var log = manager.GetOrCreate("compacted", 0, Compacted);
            manager.GetOrCreate("plain", 0, new LogConfig());
            WriteSeedExample(log, time);
            manager.StartBackgroundTasks();
            Assert.True(SpinWait.SpinUntil(() => log.CleanerCheckpoint == 11, TimeSpan.FromSeconds(30)));
            Assert.True(SpinWait.SpinUntil(() => Checkpoints.ReadOffsets(checkpointFile).GetValueOrDefault(("compacted", 0)) == 11, TimeSpan.FromSeconds(30)));
            Assert.Equal([3L, 4, 6, 8, 9, 10, 11], Batches.ReadAll(log).Select(r => r.Offset));
        }
        finally
        {
            await manager.DisposeAsync();
        }

        var checkpoint = Checkpoints.ReadOffsets(checkpointFile);
        Assert.Equal(11, checkpoint[("compacted", 0)]);
        Assert.False(checkpoint.ContainsKey(("plain", 0)));
        var again = new LogManager(dir.Path, options, time);
        try
        {
            var log = again.GetOrCreate("compacted", 0, Compacted);
            Assert.Equal(11, log.CleanerCheckpoint);
            Assert.Null(again.Cleaner.RunOnce(Ct));
            Assert.Equal([3L, 4, 6, 8, 9, 10, 11], Batches.ReadAll(log).Select(r => r.Offset));
        }
        finally
        {
            await again.DisposeAsync();
        }
    }

    [Fact]
    public void TruncationBelowTheCheckpointLowersIt()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        WriteSeedExample(log, time);
        new LogCleaner(() => [log], time).RunOnce(Ct);
        Assert.Equal(11, log.CleanerCheckpoint);
        log.TruncateTo(9);
        Assert.Equal(9, log.CleanerCheckpoint);
    }

    [Fact]
    public void ASwapIsRefusedWhenTheLogChangedUnderTheCleaner()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        WriteSeedExample(log, time);
        var replaced = log.Segments.Take(2).ToArray();
        var truncations = log.TruncationCount;
        LogSegment Cleaned()
        {
            var segment = LogSegment.Create(log.Directory, 0, log.Config, time.NowMs, LogSegment.CleanedSuffix);
            segment.Append(PartitionLog.ReadBytes(log.Read(3, 1 << 20)), time.NowMs);
            return segment;
        }

        // A wrong end, a stale truncation count, or segments no longer in the log: nothing is committed.
        foreach (var (covers, seen, segments) in new[] { (6L, truncations, replaced), (11L, truncations - 1, replaced), (11L, truncations, replaced.Reverse().ToArray()) })
        {
            using var cleaned = Cleaned();
            Assert.Equal(SegmentReplacement.Rejected, log.ReplaceSegments(segments, cleaned, covers, seen));
            Assert.Equal([0L, 6, 11], log.Segments.Select(s => s.BaseOffset));
            Assert.False(File.Exists(PartitionLog.SwapMarkerPath(log.Directory, 0)));
            Assert.Empty(Directory.GetFiles(log.Directory, "*.swap"));
            cleaned.DeleteFiles(LogSegment.CleanedSuffix);
        }

        // The log owns the swapped-in segment from here.
        Assert.Equal(SegmentReplacement.Replaced, log.ReplaceSegments(replaced, Cleaned(), 11, truncations));
        Assert.Equal([0L, 11], log.Segments.Select(s => s.BaseOffset));
        Assert.Equal([3L, 4, 5, 11], Records(log).Select(r => r.Offset));
        Assert.Empty(Directory.GetFiles(log.Directory, "*.cleaned"));
        Assert.False(File.Exists(PartitionLog.SwapMarkerPath(log.Directory, 0)));
        log.DeletePendingFiles(force: true);
    }

    [Fact]
    public void AFullMapLeavesTheRestOfTheDirtyPartForTheNextCleaning()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        WriteSeedExample(log, time);

        // Room for one key: the first dirty segment is still mapped whole, then the map stops.
        var cleaner = new LogCleaner(() => [log], time, new LogCleanerOptions { DedupeBufferSize = 24 });
        var first = cleaner.RunOnce(Ct);
        Assert.Equal((0L, 6L), (first?.FirstDirtyOffset, first?.EndOffset));
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9, 10, 11], Records(log).Select(r => r.Offset));

        var second = cleaner.RunOnce(Ct);
        Assert.Equal((6L, 11L), (second?.FirstDirtyOffset, second?.EndOffset));
        Assert.Equal([3L, 4, 6, 8, 9, 10, 11], Records(log).Select(r => r.Offset));
    }

    [Fact]
    public void OnlyCompactedLogsAreCleaned()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time, new LogConfig());
        WriteSeedExample(log, time);
        var cleaner = new LogCleaner(() => [log], time);
        Assert.Empty(cleaner.Inspect());
        Assert.Null(cleaner.RunOnce(Ct));
        Assert.Throws<InvalidOperationException>(() => cleaner.Clean(log, Ct));
        Assert.Equal(12, Records(log).Count);
    }

    [Fact]
    public void AnAbortedCleaningLeavesTheLogAsItWas()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        using var log = Open(dir, time);
        WriteSeedExample(log, time);
        var cleaner = new LogCleaner(() => [log], time);
        cleaner.Abort(log);
        var result = cleaner.Clean(log, Ct);
        Assert.False(result.Completed);
        Assert.Null(cleaner.RunOnce(Ct));
        Assert.Equal(12, Records(log).Count);
        Assert.DoesNotContain(Directory.GetFiles(log.Directory), f => f.EndsWith(".cleaned", StringComparison.Ordinal));
    }
}
