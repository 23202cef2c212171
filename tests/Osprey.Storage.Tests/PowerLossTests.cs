using System.Text;
using CsCheck;
using Microsoft.Win32.SafeHandles;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

/// <summary>
/// Power loss, simulated: a crash by kill -9 keeps the page cache, so it cannot tell whether an acknowledgement waited
/// for fsync. Here the log writes through a simulated disk (<see cref="PartitionLog.Writer"/> and
/// <see cref="PartitionLog.Syncer"/>) that knows exactly what each fsync covered; at the crash every byte it did not
/// cover is lost or torn at a random point (and sometimes garbled). Properties, over random sequences of appends,
/// flushes and rolls: every record acknowledged as durable (below the recovery point when the power went) is there
/// after recovery, and what recovery keeps is a prefix of what was written, record for record.
/// </summary>
public class PowerLossTests
{
    private abstract record Op;

    private sealed record Append(int Count, int ValueSize) : Op;

    private sealed record Flush : Op;

    private sealed record Roll : Op;

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (8, Gen.Select(Gen.Int[1, 6], Gen.Int[0, 150], (c, v) => (Op)new Append(c, v))),
        (3, Gen.Const<Op>(new Flush())),
        (1, Gen.Const<Op>(new Roll())));

    /// <summary>A disk whose files keep, at a power failure, only what an fsync covered (and a torn piece of the rest).</summary>
    private sealed class SimulatedDisk
    {
        private readonly Dictionary<string, long> _durable = new(StringComparer.Ordinal);

        public void Write(SafeFileHandle file, ReadOnlySpan<byte> bytes, long position) => RandomAccess.Write(file, bytes, position);

        public void Sync(SafeFileHandle file, string path) => _durable[path] = RandomAccess.GetLength(file);

        /// <summary>The power goes: each segment file keeps its synced length plus a random part of what followed, sometimes garbled.</summary>
        public void LoseUnsynced(string directory, Random random)
        {
            foreach (var path in Directory.GetFiles(directory, "*" + LogSegment.LogSuffix))
            {
                var durable = _durable.GetValueOrDefault(path);
                var length = new FileInfo(path).Length;
                if (length <= durable)
                {
                    continue;
                }

                var kept = durable + (long)(random.NextDouble() * (length - durable + 1));
                using (var stream = new FileStream(path, FileMode.Open))
                {
                    stream.SetLength(Math.Min(kept, length));
                    if (kept > durable && random.Next(3) == 0)
                    {
                        stream.Position = durable + random.NextInt64(kept - durable);
                        stream.WriteByte((byte)random.Next(256));
                    }
                }
            }
        }
    }

    [Fact]
    public void AcknowledgedRecordsSurviveAndRecoveryKeepsAPrefix()
    {
        // It found two holes: a torn batch whose CRC held but whose base offset (outside the CRC) was garbage, and a
        // segment whose tail was lost exactly at a batch boundary while the next segment's file survived.
        Gen.Select(Ops.List[1, 40], Gen.Int, Gen.Bool).Sample((ops, seed, checkpointLags) => Run(ops, seed, checkpointLags), iter: 150, threads: 1);
    }

    private static void Run(List<Op> ops, int seed, bool checkpointLags)
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "power-0");
        var time = new ManualTimeProvider();
        var config = new LogConfig { SegmentBytes = 1500, IndexIntervalBytes = 100 };
        var disk = new SimulatedDisk();
        var written = new List<string>();
        long acknowledged;
        using (var log = PartitionLog.Open(path, "power", 0, config, time))
        {
            log.Writer = disk.Write;
            log.Syncer = disk.Sync;
            foreach (var op in ops)
            {
                switch (op)
                {
                    case Append(var count, var size):
                        using (var builder = new RecordBatchBuilder())
                        {
                            for (var i = 0; i < count; i++)
                            {
                                var value = $"{written.Count}:" + new string((char)('a' + (written.Count % 26)), size);
                                builder.Append(1_700_000_000_000 + written.Count, null, Encoding.UTF8.GetBytes(value));
                                written.Add(value);
                            }

                            log.Append(builder.ToArray());
                        }

                        break;
                    case Flush:
                        log.Flush(log.LogEndOffset);
                        break;
                    case Roll:
                        log.Roll();
                        break;
                }
            }

            // What a producer with acks=all was told is durable when the power went.
            acknowledged = log.RecoveryPoint;
        }

        disk.LoseUnsynced(path, new Random(seed));

        // The recovery point checkpoint is written now and then, so it may lag what was acknowledged.
        var checkpoint = checkpointLags ? acknowledged / 2 : acknowledged;
        using var recovered = PartitionLog.Open(path, "power", 0, config, time, recoveryPoint: checkpoint, logStartOffset: 0, cleanShutdown: false);
        var records = Batches.ReadAll(recovered);
        Assert.True(recovered.LogEndOffset >= acknowledged, $"acknowledged up to {acknowledged}, recovered up to {recovered.LogEndOffset}");
        Assert.Equal(Enumerable.Range(0, (int)recovered.LogEndOffset).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(written.Take((int)recovered.LogEndOffset), records.Select(r => r.Value));

        // And the log goes on from there.
        recovered.Append(Batches.Make(1));
        Assert.Equal(records.Count + 1, recovered.LogEndOffset);
    }
}
