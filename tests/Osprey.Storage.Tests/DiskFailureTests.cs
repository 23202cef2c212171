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
}
