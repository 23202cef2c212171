namespace Osprey.Storage.Tests;

/// <summary>
/// The descriptors a log holds: one per partition for its active segment, plus a bounded number of older segments'
/// files (<see cref="SegmentHandleCache"/>); index files are never held open. Counted in /proc/self/fd.
/// </summary>
public class OpenFilesTests
{
    /// <summary>The process's descriptors that point into <paramref name="directory"/>.</summary>
    private static List<string> OpenFilesUnder(string directory)
    {
        var prefix = Path.GetFullPath(directory) + Path.DirectorySeparatorChar;
        var open = new List<string>();
        foreach (var fd in Directory.GetFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith(prefix, StringComparison.Ordinal))
                {
                    open.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }

        return open;
    }

    private static PartitionLog OpenLog(TempDirectory dir, SegmentHandleCache handles, int segmentBytes) =>
        PartitionLog.Open(Path.Combine(dir.Path, "wide-0"), "wide", 0, new LogConfig { SegmentBytes = segmentBytes, IndexIntervalBytes = 1 }, new ManualTimeProvider(), handles: handles);

    [Fact]
    public void ALogWithManySegmentsHoldsItsActiveSegmentAndAtMostTheCachedOnesOpen()
    {
        using var dir = new TempDirectory();
        var handles = new SegmentHandleCache(2);
        var batch = Batches.Make(10, valueSize: 50);
        using (var log = OpenLog(dir, handles, batch.Length * 2))
        {
            for (var i = 0; i < 20; i++)
            {
                log.Append(batch);
            }

            Assert.Equal(10, log.Segments.Count);
            // Rolling handed each older segment to the cache, which kept the last two open.
            Assert.Equal(3, OpenFilesUnder(dir.Path).Count);
            Assert.Equal(2, handles.Count);

            // Reading the whole log opens each old segment in turn; the cache keeps two of them.
            Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i), Batches.ReadAll(log).Select(r => r.Offset));
            var open = OpenFilesUnder(dir.Path);
            Assert.InRange(open.Count, 1, 3);
            Assert.All(open, path => Assert.EndsWith(LogSegment.LogSuffix, path, StringComparison.Ordinal));
            Assert.Contains(log.ActiveSegment.LogPath, open);
            Assert.Equal(2, handles.Count);

            // And again, from files the cache closed: nothing is lost by closing them.
            Assert.Equal(200, Batches.ReadAll(log).Count);
        }

        Assert.Empty(OpenFilesUnder(dir.Path));
        Assert.Equal(0, handles.Count);
    }

    [Fact]
    public void AReopenedLogHoldsOnlyItsActiveSegmentOpen()
    {
        using var dir = new TempDirectory();
        var handles = new SegmentHandleCache(4);
        var batch = Batches.Make(10, valueSize: 50);
        using (var log = OpenLog(dir, handles, batch.Length * 2))
        {
            for (var i = 0; i < 12; i++)
            {
                log.Append(batch);
            }
        }

        // An unclean open scans the segments past the recovery point (0: all of them) and still lets them go.
        var time = new ManualTimeProvider();
        using var reopened = PartitionLog.Open(Path.Combine(dir.Path, "wide-0"), "wide", 0, new LogConfig { SegmentBytes = batch.Length * 2, IndexIntervalBytes = 1 }, time, handles: handles);
        Assert.Equal(6, reopened.Segments.Count);
        Assert.Equal(120, reopened.LogEndOffset);
        Assert.InRange(OpenFilesUnder(dir.Path).Count, 1, 5);
        Assert.InRange(handles.Count, 0, 4);
        Assert.Equal(120, Batches.ReadAll(reopened).Count);
    }

    [Fact]
    public void AFileTheCacheClosesDuringARegionCopyStaysReadableUntilTheCopyEnds()
    {
        using var dir = new TempDirectory();
        var handles = new SegmentHandleCache(1);
        var batch = Batches.Make(10, valueSize: 50);
        using var log = OpenLog(dir, handles, batch.Length * 2);
        for (var i = 0; i < 8; i++)
        {
            log.Append(batch);
        }

        var first = log.Segments[0];
        using (var lease = first.LeaseFile())
        {
            // Reading other old segments evicts the first one's file while the lease holds it.
            Assert.NotNull(log.Read(20, 1 << 20).Region);
            Assert.NotNull(log.Read(40, 1 << 20).Region);
            Assert.False(first.IsFileOpen);
            var bytes = new byte[batch.Length];
            Assert.Equal(batch.Length, RandomAccess.Read(lease.Handle, bytes, 0));
            Assert.Equal(batch, bytes);
        }

        // The lease was the last user: the descriptor is gone, and the next read opens the file again.
        Assert.DoesNotContain(first.LogPath, OpenFilesUnder(dir.Path));
        Assert.Equal(batch, PartitionLog.ReadBytes(log.Read(0, batch.Length)));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task APartitionCostsOneDescriptorHoweverManySegmentsItHas()
    {
        using var dir = new TempDirectory();
        var batch = Batches.Make(10, valueSize: 50);
        var config = new LogConfig { SegmentBytes = batch.Length, IndexIntervalBytes = 1 };
        const int partitions = 200;
        await using (var manager = new LogManager(dir.Path, new LogManagerOptions { OpenSegmentsMax = 8 }, new ManualTimeProvider()))
        {
            for (var p = 0; p < partitions; p++)
            {
                var log = manager.GetOrCreate("many", p, config);
                for (var i = 0; i < 3; i++)
                {
                    log.Append(batch);
                }
            }

            // Three segments with two index files each per partition: about 200 descriptors, not 1,800.
            var open = OpenFilesUnder(dir.Path);
            Assert.All(open, path => Assert.EndsWith(LogSegment.LogSuffix, path, StringComparison.Ordinal));
            Assert.InRange(open.Count, partitions, partitions + 8);
            foreach (var log in manager.Logs.Values)
            {
                Assert.Equal(30, Batches.ReadAll(log).Count);
            }

            Assert.InRange(OpenFilesUnder(dir.Path).Count, partitions, partitions + 8);
        }

        // Reopened after a clean stop, still one per partition (plus the cached few).
        await using (var manager = new LogManager(dir.Path, new LogManagerOptions { OpenSegmentsMax = 8 }, new ManualTimeProvider()))
        {
            manager.LoadAll(_ => config);
            Assert.Equal(partitions, manager.Logs.Count);
            Assert.InRange(OpenFilesUnder(dir.Path).Count, partitions, partitions + 8);
            Assert.All(manager.Logs.Values, log => Assert.Equal(30, log.LogEndOffset));
        }
    }

    [Fact]
    public void TheDefaultCacheSizeFollowsTheDescriptorLimit()
    {
        Assert.Equal(16, SegmentHandleCache.DefaultCapacity(20));
        Assert.Equal(256, SegmentHandleCache.DefaultCapacity(1024));
        Assert.Equal(4096, SegmentHandleCache.DefaultCapacity(1 << 20));
        Assert.True(NativeFileSystem.OpenFileLimit() > 0);
        Assert.True(NativeFileSystem.OpenFileCount() > 0);
    }

    [Fact]
    public void RunningOutOfDescriptorsIsNamedAsSuch()
    {
        var shortage = new IOException("Too many open files : '/data/t-0/00000000000000000000.log'", 24);
        Assert.True(NativeFileSystem.IsDescriptorShortage(shortage));
        Assert.False(NativeFileSystem.IsDescriptorShortage(new IOException("No space left on device", 28)));
        var error = new DescriptorShortageException("/data/t-0/00000000000000000000.log", shortage);
        Assert.Equal(Osprey.Protocol.ErrorCode.KafkaStorageError, error.ErrorCode);
        Assert.Contains("Out of file descriptors", error.Message, StringComparison.Ordinal);
        Assert.Contains("ulimit -n", error.Message, StringComparison.Ordinal);
    }
}
