namespace Osprey.Storage.Tests;

public class LogManagerTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ACleanShutdownWritesTheMarkerAndCheckpointsAndTheNextStartTrustsThem()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using (var manager = new LogManager(dir.Path, new LogManagerOptions(), time))
        {
            Assert.False(manager.WasCleanShutdown);
            var log = manager.GetOrCreate("orders", 3, new LogConfig());
            await manager.AppendAsync(log, Batches.Make(5), durable: true);
        }

        Assert.True(File.Exists(Path.Combine(dir.Path, ".kafka_cleanshutdown")));
        Assert.Equal("0\n1\norders 3 5\n", File.ReadAllText(Path.Combine(dir.Path, "recovery-point-offset-checkpoint")));
        Assert.Equal("0\n1\norders 3 0\n", File.ReadAllText(Path.Combine(dir.Path, "log-start-offset-checkpoint")));

        await using (var manager = new LogManager(dir.Path, new LogManagerOptions(), time))
        {
            Assert.True(manager.WasCleanShutdown);
            Assert.False(File.Exists(Path.Combine(dir.Path, ".kafka_cleanshutdown"))); // a crash from now on is unclean
            manager.LoadAll(_ => new LogConfig());
            var log = manager.Get("orders", 3)!;
            Assert.Equal(5, log.LogEndOffset);
            Assert.Equal(5, log.RecoveryPoint);
        }
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AClosedManagerOpensNoLogAndWritesNothingAfterItsMarker()
    {
        using var dir = new TempDirectory();
        var manager = new LogManager(dir.Path, new LogManagerOptions(), new ManualTimeProvider());
        var open = manager.GetOrCreate("orders", 0, new LogConfig());
        Assert.Same(open, manager.GetOrCreate("orders", 0, new LogConfig()));
        await manager.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => manager.GetOrCreate("late", 0, new LogConfig()));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "late-0")));
        Assert.True(File.Exists(Path.Combine(dir.Path, ".kafka_cleanshutdown")));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DurableAppendsCompleteOnlyOnceFlushed()
    {
        using var dir = new TempDirectory();
        await using var manager = new LogManager(dir.Path, new LogManagerOptions(), new ManualTimeProvider());
        var logs = Enumerable.Range(0, 8).Select(p => manager.GetOrCreate("events", p, new LogConfig())).ToList();
        var appends = Enumerable.Range(0, 200).Select(i => manager.AppendAsync(logs[i % 8], Batches.Make(2), durable: true).AsTask()).ToList();
        var results = await Task.WhenAll(appends);
        foreach (var (result, i) in results.Select((r, i) => (r, i)))
        {
            Assert.True(logs[i % 8].RecoveryPoint > result.LastOffset);
        }

        Assert.All(logs, log => Assert.Equal(50, log.LogEndOffset));
        Assert.True(manager.Flusher.Flushes <= 200, "each request needs at most one flush, and rounds share them");
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AppendsThatArriveDuringARoundShareTheNextOne()
    {
        using var dir = new TempDirectory();
        await using var manager = new LogManager(dir.Path, new LogManagerOptions(), new ManualTimeProvider());
        var log = manager.GetOrCreate("events", 0, new LogConfig());

        // Round 1 is held on the flusher's thread (deterministically, instead of racing a wall-clock interval)
        // while two more appends ask to be durable: they wait for round 1 to end and are made durable together, by
        // round 2.
        using var inRound = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        manager.Flusher.RoundStarting = round =>
        {
            if (round == 1)
            {
                inRound.Set();
                release.Wait(TimeSpan.FromSeconds(30));
            }
        };
        var first = manager.AppendAsync(log, Batches.Make(1), durable: true).AsTask();
        Assert.True(inRound.Wait(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        var second = manager.WhenDurable(log, log.Append(Batches.Make(1)), durable: true);
        var third = manager.WhenDurable(log, log.Append(Batches.Make(1)), durable: true);
        Assert.False(second.IsCompleted || third.IsCompleted);
        release.Set();
        await Task.WhenAll(first, second, third);
        Assert.Equal(2, manager.Flusher.Rounds);
        Assert.Equal(3, log.RecoveryPoint);

        // Not durable: nothing to wait for.
        Assert.True(manager.WhenDurable(log, log.Append(Batches.Make(1)), durable: false).IsCompleted);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task NonDurableAppendsLeaveTheRecoveryPointUntilFlushMessagesIsReached()
    {
        using var dir = new TempDirectory();
        await using var manager = new LogManager(dir.Path, new LogManagerOptions(), new ManualTimeProvider());
        var log = manager.GetOrCreate("events", 0, new LogConfig { FlushMessages = 10 });
        await manager.AppendAsync(log, Batches.Make(5), durable: false);
        manager.RunFlushChecks();
        Assert.Equal(0, log.RecoveryPoint);
        await manager.AppendAsync(log, Batches.Make(5), durable: false);
        manager.RunFlushChecks();
        Assert.Equal(10, log.RecoveryPoint);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task FlushMsFlushesOldUnflushedData()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var manager = new LogManager(dir.Path, new LogManagerOptions(), time);
        var log = manager.GetOrCreate("events", 0, new LogConfig { FlushMs = 1000 });
        await manager.AppendAsync(log, Batches.Make(3), durable: false);
        time.Advance(999);
        manager.RunFlushChecks();
        Assert.Equal(0, log.RecoveryPoint);
        time.Advance(1);
        manager.RunFlushChecks();
        Assert.Equal(3, log.RecoveryPoint);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheDurabilitySettingCanTurnOffWaitingForFsync()
    {
        using var dir = new TempDirectory();
        await using var manager = new LogManager(dir.Path, new LogManagerOptions { DurableAppends = false }, new ManualTimeProvider());
        var log = manager.GetOrCreate("events", 0, new LogConfig());
        await manager.AppendAsync(log, Batches.Make(3), durable: true);
        Assert.Equal(0, log.RecoveryPoint);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DeletingAPartitionRemovesItsDirectory()
    {
        using var dir = new TempDirectory();
        await using var manager = new LogManager(dir.Path, new LogManagerOptions(), new ManualTimeProvider());
        var log = manager.GetOrCreate("my-topic-with-dashes", 7, new LogConfig());
        log.Append(Batches.Make(1));
        Assert.Contains(("my-topic-with-dashes", 7), manager.PartitionsOnDisk());
        manager.Delete("my-topic-with-dashes", 7);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "my-topic-with-dashes-7")));
        Assert.Null(manager.Get("my-topic-with-dashes", 7));
    }
}

public class RetentionTests
{
    private static PartitionLog Log(TempDirectory dir, ManualTimeProvider time, LogConfig config) =>
        PartitionLog.Open(Path.Combine(dir.Path, "t-0"), "t", 0, config, time);

    [Fact]
    public void RetentionMsDeletesClosedSegmentsWhoseNewestRecordIsTooOld()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(10_000_000);
        var batch = Batches.Make(10, timestamp: 0);
        using var log = Log(dir, time, new LogConfig { SegmentBytes = batch.Length, RetentionMs = 5000, FileDeleteDelayMs = 0 });
        log.Append(Batches.Make(10, timestamp: 10_000_000 - 9000)); // segment 0: old
        log.Append(Batches.Make(10, timestamp: 10_000_000 - 6000)); // segment 10: old
        log.Append(Batches.Make(10, timestamp: 10_000_000 - 1000)); // segment 20: young
        log.Append(Batches.Make(10, timestamp: 10_000_000 - 9000)); // segment 30: active, never deleted
        Assert.Equal(2, log.ApplyRetention());
        Assert.Equal(20, log.LogStartOffset);
        Assert.Equal([20L, 30], log.Segments.Select(s => s.BaseOffset));
        Assert.False(File.Exists(Path.Combine(log.Directory, "00000000000000000000.log")));
        Assert.Equal(Osprey.Protocol.ErrorCode.OffsetOutOfRange, ErrorCode(() => log.Read(5, 100)));
        Assert.Equal(20, Batches.ReadAll(log).Count);
    }

    [Fact]
    public void RetentionBytesKeepsTheLogUnderTheLimitOldestFirst()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(2_000_000_000_000);
        var batch = Batches.Make(10, timestamp: 2_000_000_000_000);
        using var log = Log(dir, time, new LogConfig { SegmentBytes = batch.Length, RetentionBytes = batch.Length * 2, FileDeleteDelayMs = 0 });
        for (var i = 0; i < 5; i++)
        {
            log.Append(batch);
        }

        Assert.Equal(3, log.ApplyRetention());
        Assert.Equal([30L, 40], log.Segments.Select(s => s.BaseOffset));
        Assert.Equal(30, log.LogStartOffset);
    }

    [Fact]
    public void WithoutTheDeletePolicyNothingIsDeleted()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(10_000_000);
        var batch = Batches.Make(10, timestamp: 0);
        using var log = Log(dir, time, new LogConfig { SegmentBytes = batch.Length, RetentionMs = 1, Delete = false, Compact = true });
        log.Append(batch);
        log.Append(batch);
        Assert.Equal(0, log.ApplyRetention());
        Assert.Equal(0, log.LogStartOffset);
    }

    [Fact]
    public void DeleteRecordsMovesTheLogStartOffset()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var batch = Batches.Make(10);
        using var log = Log(dir, time, new LogConfig { SegmentBytes = batch.Length, FileDeleteDelayMs = 0 });
        for (var i = 0; i < 3; i++)
        {
            log.Append(batch);
        }

        Assert.Equal(15, log.DeleteRecordsBefore(15));
        Assert.Equal([10L, 20], log.Segments.Select(s => s.BaseOffset));
        Assert.Equal(Enumerable.Range(15, 15).Select(i => (long)i), Batches.ReadAll(log).Select(r => r.Offset));
        Assert.Equal(new TimestampAndOffset(1_700_000_000_005, 15), log.OffsetForTimestamp(0));
        Assert.Equal(15, log.DeleteRecordsBefore(3)); // never backwards
        Assert.Equal(Osprey.Protocol.ErrorCode.OffsetOutOfRange, ErrorCode(() => log.DeleteRecordsBefore(31)));
    }

    [Fact]
    public void DeletedSegmentFilesLingerForFileDeleteDelay()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(10_000_000);
        var batch = Batches.Make(10, timestamp: 0);
        using var log = Log(dir, time, new LogConfig { SegmentBytes = batch.Length, RetentionMs = 1, FileDeleteDelayMs = 60_000 });
        log.Append(batch);
        log.Append(batch);
        Assert.Equal(1, log.ApplyRetention());
        var renamed = Path.Combine(log.Directory, "00000000000000000000.log.deleted");
        Assert.True(File.Exists(renamed));
        time.Advance(60_000);
        log.DeletePendingFiles(force: false);
        Assert.False(File.Exists(renamed));
    }

    private static Osprey.Protocol.ErrorCode ErrorCode(Action action) =>
        Assert.Throws<Osprey.Protocol.KafkaProtocolException>(action).ErrorCode;
}

public class BackgroundTaskTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task RetentionRunsEveryCheckIntervalOnTheInjectedClock()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(10_000_000);
        await using var manager = new LogManager(dir.Path, new LogManagerOptions { RetentionCheckIntervalMs = 500 }, time);
        var batch = Batches.Make(10, timestamp: 0);
        var log = manager.GetOrCreate("t", 0, new LogConfig { SegmentBytes = batch.Length, RetentionMs = 1000, FileDeleteDelayMs = 0 });
        log.Append(batch);
        log.Append(batch);
        manager.StartBackgroundTasks();
        await TestWait.UntilAsync(() => time.ActiveTimers >= 3);

        time.Advance(499);
        Assert.Equal(0, log.LogStartOffset);
        time.Advance(1);
        await TestWait.UntilAsync(() => log.LogStartOffset == 10);
        Assert.Equal(10, log.LogStartOffset);
    }
}
