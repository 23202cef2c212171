using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

/// <summary>
/// Model-based test: random sequences of append, read, roll, retention, compaction, DeleteRecords, clean restart
/// and crash (tail truncated or corrupted at a random byte of unflushed data) against a list of records in memory.
/// The topic is compact,delete: compaction keeps, among the closed segments, the latest record of each key.
/// </summary>
public class ModelTests
{
    private abstract record Op;

    private sealed record Append(int Count, int ValueSize, long Skew) : Op;

    private sealed record Roll : Op;

    private sealed record Advance(long Ms) : Op;

    private sealed record DeleteRecords(double Fraction) : Op;

    private sealed record Restart : Op;

    private sealed record Compact : Op;

    private sealed record Crash(bool Flush, bool Corrupt, double Where) : Op;

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (10, Gen.Select(Gen.Int[1, 5], Gen.Int[0, 120], Gen.Long[-5000, 5000], (c, v, s) => (Op)new Append(c, v, s))),
        (1, Gen.Const<Op>(new Roll())),
        (2, Gen.Long[1, 4000].Select(ms => (Op)new Advance(ms))),
        (1, Gen.Double[0, 1].Select(f => (Op)new DeleteRecords(f))),
        (1, Gen.Const<Op>(new Restart())),
        (2, Gen.Const<Op>(new Compact())),
        (2, Gen.Select(Gen.Bool, Gen.Bool, Gen.Double[0, 1], (f, c, w) => (Op)new Crash(f, c, w))));

    [Fact]
    public void TheLogBehavesLikeAListOfRecords()
    {
        Ops.List[1, 40].Sample(Run, iter: 60, threads: 1);
    }

    private sealed class World : IDisposable
    {
        public TempDirectory Dir { get; } = new();

        public ManualTimeProvider Time { get; } = new();

        public LogConfig Config { get; } = new() { SegmentBytes = 1200, IndexIntervalBytes = 100, RetentionMs = 10_000, FileDeleteDelayMs = 0, Compact = true, Delete = true };

        public List<(long Offset, long Timestamp, string Key, string Value)> Records { get; } = [];

        public long Start { get; set; }

        public long Next { get; set; }

        public PartitionLog Log { get; set; } = null!;

        public string Path => System.IO.Path.Combine(Dir.Path, "m-0");

        public void Dispose()
        {
            Log.Dispose();
            Dir.Dispose();
        }
    }

    private static void Run(List<Op> ops)
    {
        using var world = new World();
        world.Log = PartitionLog.Open(world.Path, "m", 0, world.Config, world.Time);
        var serial = 0;
        foreach (var op in ops)
        {
            switch (op)
            {
                case Append a:
                    using (var builder = new RecordBatchBuilder())
                    {
                        var values = new List<(long, string, string)>();
                        for (var i = 0; i < a.Count; i++)
                        {
                            var key = $"k{(serial + a.ValueSize) % 5}";
                            var value = $"v{serial++}:" + new string('x', a.ValueSize);
                            var ts = world.Time.NowMs + a.Skew + i;
                            builder.Append(ts, Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));
                            values.Add((ts, key, value));
                        }

                        var result = world.Log.Append(builder.Build().Span);
                        Assert.Equal(world.Next, result.FirstOffset);
                        foreach (var (ts, key, value) in values)
                        {
                            world.Records.Add((world.Next++, ts, key, value));
                        }
                    }

                    break;
                case Roll:
                    world.Log.Roll();
                    break;
                case Advance adv:
                    world.Time.Advance(adv.Ms);
                    world.Log.ApplyRetention();
                    var newStart = world.Log.LogStartOffset;
                    var cutoff = world.Time.NowMs - world.Config.RetentionMs;
                    Assert.All(world.Records.Where(r => r.Offset < newStart && r.Offset >= world.Start), r => Assert.True(r.Timestamp < cutoff, $"record {r.Offset} deleted too early"));
                    world.Start = Math.Max(world.Start, newStart);
                    break;
                case DeleteRecords d:
                    var target = world.Start + (long)((world.Next - world.Start) * d.Fraction);
                    world.Start = Math.Max(world.Start, world.Log.DeleteRecordsBefore(target));
                    Assert.Equal(Math.Max(target, world.Start), world.Start);
                    break;
                case Restart:
                    world.Log.Close();
                    world.Log = PartitionLog.Open(world.Path, "m", 0, world.Config, world.Time, world.Log.RecoveryPoint, world.Start, cleanShutdown: true);
                    break;
                case Crash c:
                    CrashAndRecover(world, c);
                    break;
                case Compact:
                    // The cleanable range ends at the active segment; within it only a key's latest record stays.
                    var end = world.Log.ActiveSegment.BaseOffset;
                    new LogCleaner(() => [world.Log], world.Time).Clean(world.Log);
                    var latest = world.Records.Where(r => r.Offset < end).GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.Max(r => r.Offset));
                    world.Records.RemoveAll(r => r.Offset < end && latest[r.Key] != r.Offset);
                    break;
            }

            Check(world);
        }
    }

    private static void CrashAndRecover(World world, Crash crash)
    {
        if (crash.Flush)
        {
            world.Log.Flush(world.Log.LogEndOffset);
        }

        var recoveryPoint = world.Log.RecoveryPoint;
        var active = world.Log.ActiveSegment;
        var file = active.LogPath;
        world.Log.Dispose();

        // Batches of the active segment that are not yet flushed may be torn or corrupt.
        var bytes = File.ReadAllBytes(file);
        var batches = new List<(int Position, int Size, long BaseOffset)>();
        for (var p = 0; p < bytes.Length;)
        {
            var size = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(p + 8)) + 12;
            batches.Add((p, size, BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(p))));
            p += size;
        }

        var damageable = batches.Where(b => b.BaseOffset >= recoveryPoint).ToList();
        var lost = world.Next;
        if (damageable.Count > 0)
        {
            var victim = damageable[(int)(crash.Where * (damageable.Count - 1))];
            if (crash.Corrupt)
            {
                // Inside what the CRC covers (attributes to the end), so the damage is detectable.
                var at = victim.Position + 21 + (int)(crash.Where * (victim.Size - 22));
                bytes[at] ^= 0x5A;
                File.WriteAllBytes(file, bytes);
            }
            else
            {
                var cut = victim.Position + (int)(crash.Where * (victim.Size - 1));
                File.WriteAllBytes(file, bytes[..cut]);
            }

            lost = victim.BaseOffset;
        }

        world.Log = PartitionLog.Open(world.Path, "m", 0, world.Config, world.Time, recoveryPoint, world.Start, cleanShutdown: false);
        world.Records.RemoveAll(r => r.Offset >= lost);
        world.Next = lost;
        world.Start = Math.Min(world.Start, world.Next);
    }

    private static void Check(World world)
    {
        Assert.Equal(world.Next, world.Log.LogEndOffset);
        Assert.Equal(world.Start, world.Log.LogStartOffset);
        var expected = world.Records.Where(r => r.Offset >= world.Start).ToList();
        var actual = Batches.ReadAll(world.Log);
        Assert.Equal(expected.Select(r => (r.Offset, r.Timestamp, r.Key, r.Value)), actual.Select(r => (r.Offset, r.Timestamp, r.Key!, r.Value!)));
    }
}
