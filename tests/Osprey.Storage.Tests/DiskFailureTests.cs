using Osprey.Protocol;

namespace Osprey.Storage.Tests;

/// <summary>A write the disk refuses fails the append with KAFKA_STORAGE_ERROR and leaves the log as it was.</summary>
public class DiskFailureTests
{
    [Fact]
    public void DiskFullFailsTheAppendWithAStorageErrorAndKeepsTheLogReadable()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "full-0");
        var time = new ManualTimeProvider();
        using (var log = PartitionLog.Open(path, "full", 0, new LogConfig(), time))
        {
            log.Append(Batches.Make(4));
            log.Roll();
            log.Close();
        }

        // The active segment becomes /dev/full, where every write fails with ENOSPC.
        var active = Path.Combine(path, "00000000000000000004.log");
        File.Delete(active);
        File.CreateSymbolicLink(active, "/dev/full");

        using var reopened = PartitionLog.Open(path, "full", 0, new LogConfig(), time, 4, 0, cleanShutdown: true);
        var e = Assert.Throws<KafkaStorageException>(() => reopened.Append(Batches.Make(2)));
        Assert.Equal(ErrorCode.KafkaStorageError, e.ErrorCode);
        Assert.Equal(4, reopened.LogEndOffset);
        Assert.Equal([0L, 1, 2, 3], Batches.ReadAll(reopened).Select(r => r.Offset));
        Assert.Equal(ErrorCode.KafkaStorageError, Assert.Throws<KafkaStorageException>(() => reopened.Append(Batches.Make(1))).ErrorCode);
    }

    /// <summary>
    /// A write the disk takes only part of (a full file system accepts what fits, then ENOSPC) leaves nothing
    /// behind: the segment is cut back to its exact length before, so a clean close stays clean and the next open
    /// trusts a tail that really ends where the log says (it refused to start with "unreadable batch ... in a clean
    /// segment"). Once the disk has room again, appends continue.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(61)]
    [InlineData(200)]
    public void APartialWriteOnAFullDiskIsCutBackToTheExactLength(int accepted)
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "partial-0");
        var time = new ManualTimeProvider();
        long lengthBefore;
        using (var log = PartitionLog.Open(path, "partial", 0, new LogConfig(), time))
        {
            log.Append(Batches.Make(3));
            lengthBefore = new FileInfo(Path.Combine(path, "00000000000000000000.log")).Length;
            log.Writer = (file, bytes, position) =>
            {
                RandomAccess.Write(file, bytes[..Math.Min(accepted, bytes.Length)], position);
                throw new IOException("No space left on device");
            };
            var e = Assert.Throws<KafkaStorageException>(() => log.Append(Batches.Make(5)));
            Assert.Equal(ErrorCode.KafkaStorageError, e.ErrorCode);
            Assert.Equal(lengthBefore, new FileInfo(Path.Combine(path, "00000000000000000000.log")).Length);
            Assert.Equal(3, log.LogEndOffset);
            log.Writer = null;
            log.Close();
        }

        using var reopened = PartitionLog.Open(path, "partial", 0, new LogConfig(), time, 3, 0, cleanShutdown: true);
        Assert.Equal(3, reopened.LogEndOffset);
        reopened.Append(Batches.Make(2));
        Assert.Equal([0L, 1, 2, 3, 4], Batches.ReadAll(reopened).Select(r => r.Offset));
    }
}

/// <summary>Disk failures past the first write: a segment that cannot be created, an fsync that fails.</summary>
public class DiskFailureBeyondWritesTests
{
    [Fact]
    public void ASegmentThatCannotBeCreatedFailsTheAppendAndTheOldSegmentStaysActive()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "roll-0");
        var time = new ManualTimeProvider();
        var batch = Batches.Make(2, valueSize: 100);
        var handles = new SegmentHandleCache(1);
        var config = new LogConfig { SegmentBytes = batch.Length * 2 };
        using (var log = PartitionLog.Open(path, "roll", 0, config, time, handles: handles))
        {
            log.Append(batch);
            log.Append(batch);

            // Where the next segment's file would go, a directory: creating the file fails as a broken disk would.
            var blocker = Path.Combine(path, LogSegment.FileName(4, LogSegment.LogSuffix));
            Directory.CreateDirectory(blocker);
            var e = Assert.Throws<KafkaStorageException>(() => log.Append(batch));
            Assert.Equal(ErrorCode.KafkaStorageError, e.ErrorCode);
            Assert.Contains("cannot create a segment at 4", e.Message, StringComparison.Ordinal);
            Assert.Single(log.Segments);
            Assert.Equal(4, log.LogEndOffset);

            // The old segment is still the active one: its file stays open whatever the cache does.
            Assert.True(log.ActiveSegment.IsFileOpen);
            Assert.Equal(0, handles.Count);

            // The disk recovers: the roll happens and nothing was lost or doubled.
            Directory.Delete(blocker);
            log.Append(batch);
            Assert.Equal([0L, 4], log.Segments.Select(s => s.BaseOffset));
            Assert.Equal(Enumerable.Range(0, 6).Select(i => (long)i), Batches.ReadAll(log).Select(r => r.Offset));
            log.Close();
        }

        using var reopened = PartitionLog.Open(path, "roll", 0, config, time, 6, 0, cleanShutdown: true);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (long)i), Batches.ReadAll(reopened).Select(r => r.Offset));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AFailedSyncfsFailsEveryWaitingAcknowledgementAndTheRecoveryPointStays()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var flusher = new LogFlusher(syncFileSystemThreshold: 1);
        var logs = Enumerable.Range(0, 3).Select(p => PartitionLog.Open(Path.Combine(dir.Path, $"sync-{p}"), "sync", p, new LogConfig(), time)).ToList();
        try
        {
            flusher.FileSystemSyncer = _ => throw new IOException("Input/output error");
            var waiting = logs.Select(log =>
            {
                var appended = log.Append(Batches.Make(3));
                return flusher.FlushAsync(log, appended.LastOffset + 1);
            }).ToList();
            foreach (var ack in waiting)
            {
                var e = await Assert.ThrowsAsync<KafkaStorageException>(() => ack);
                Assert.Equal(ErrorCode.KafkaStorageError, e.ErrorCode);
                Assert.Contains("syncfs failed", e.Message, StringComparison.Ordinal);
            }

            Assert.All(logs, log => Assert.Equal(0, log.RecoveryPoint));

            // Once the disk answers again, the next round covers what the failed one did not.
            var synced = 0;
            flusher.FileSystemSyncer = handle =>
            {
                NativeFileSystem.SyncFileSystem(handle);
                synced++;
            };
            await Task.WhenAll(logs.Select(log => flusher.FlushAsync(log, log.Append(Batches.Make(1)).LastOffset + 1)));
            Assert.True(synced >= 1);
            Assert.All(logs, log => Assert.Equal(4, log.RecoveryPoint));
        }
        finally
        {
            logs.ForEach(log => log.Dispose());
        }
    }
}
