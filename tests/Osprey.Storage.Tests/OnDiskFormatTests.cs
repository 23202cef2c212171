using System.Buffers.Binary;

namespace Osprey.Storage.Tests;

/// <summary>
/// The on-disk formats are Kafka's and must not drift: segment files hold the batches exactly as sent (only the
/// base offset rewritten), index entries are big-endian (relative offset, position) and (timestamp, relative
/// offset), checkpoints are Kafka's text format.
/// </summary>
public class OnDiskFormatTests
{
    [Fact]
    public void SegmentIndexAndCheckpointBytesAreStable()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var a = Batches.Make(2, timestamp: 1000);
        var b = Batches.Make(3, timestamp: 2000);
        var c = Batches.Make(1, timestamp: 1500);
        var path = Path.Combine(dir.Path, "stable-0");
        using (var log = PartitionLog.Open(path, "stable", 0, new LogConfig { IndexIntervalBytes = 1 }, time))
        {
            log.Append(a);
            log.Append(b);
            log.Append(c);
            log.Close();
        }

        // The log file: the three batches as sent, base offsets 0, 2 and 5 written into their first 8 bytes.
        var expected = a.Concat(b).Concat(c).ToArray();
        BinaryPrimitives.WriteInt64BigEndian(expected.AsSpan(a.Length), 2);
        BinaryPrimitives.WriteInt64BigEndian(expected.AsSpan(a.Length + b.Length), 5);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(File.ReadAllBytes(Path.Combine(path, "00000000000000000000.log"))));

        // The offset index: an entry for each batch after the first (index.interval.bytes = 1), naming the batch's
        // last offset relative to the segment and its position.
        Assert.Equal(
            "00000004" + a.Length.ToString("x8", System.Globalization.CultureInfo.InvariantCulture)
            + "00000005" + (a.Length + b.Length).ToString("x8", System.Globalization.CultureInfo.InvariantCulture),
            Convert.ToHexString(File.ReadAllBytes(Path.Combine(path, "00000000000000000000.index"))).ToLowerInvariant());

        // The time index: (max timestamp so far, offset of the batch holding it), only when it grows.
        Assert.Equal(
            "00000000000007d2" + "00000002",
            Convert.ToHexString(File.ReadAllBytes(Path.Combine(path, "00000000000000000000.timeindex"))).ToLowerInvariant());

        Checkpoints.WriteOffsets(Path.Combine(dir.Path, "cp"), [KeyValuePair.Create(("stable", 0), 6L), KeyValuePair.Create(("other-topic", 12), 0L)]);
        Assert.Equal("0\n2\nstable 0 6\nother-topic 12 0\n", File.ReadAllText(Path.Combine(dir.Path, "cp")));
        Assert.Equal(6, Checkpoints.ReadOffsets(Path.Combine(dir.Path, "cp"))[("stable", 0)]);
    }

    [Fact]
    public void LeaderEpochCheckpointIsKafkasFormat()
    {
        using var dir = new TempDirectory();
        var cache = new LeaderEpochCache(dir.Path);
        cache.Assign(0, 0);
        cache.Assign(3, 120);
        cache.Assign(2, 130); // older epochs are ignored
        Assert.Equal("0\n2\n0 0\n3 120\n", File.ReadAllText(Path.Combine(dir.Path, "leader-epoch-checkpoint")));
        Assert.Equal((3, 200), cache.EndOffsetFor(5, 200));
        Assert.Equal((0, 120), cache.EndOffsetFor(2, 200));
        Assert.Equal((-1, -1), new LeaderEpochCache(Path.Combine(dir.Path, "none")).EndOffsetFor(1, 0));
        cache.TruncateFromEnd(120);
        Assert.Equal([(0, 0L)], new LeaderEpochCache(dir.Path).Entries);
    }

    [Fact]
    public void ACorruptCheckpointIsAnError()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "recovery-point-offset-checkpoint");
        File.WriteAllText(file, "7\n1\nt 0 5\n");
        Assert.Throws<InvalidDataException>(() => Checkpoints.ReadOffsets(file));
        File.WriteAllText(file, "0\n2\nt 0 5\n");
        Assert.Throws<InvalidDataException>(() => Checkpoints.ReadOffsets(file));
    }
}
