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
