using System.Text;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

/// <summary>A clock tests move by hand. Its timers fire, on the caller's thread, when Advance passes their time.</summary>
internal sealed class ManualTimeProvider(long startMs = 1_700_000_000_000) : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private long _nowMs = startMs;

    public long NowMs => Interlocked.Read(ref _nowMs);

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(NowMs);

    public void Advance(long ms)
    {
        var target = NowMs + ms;
        while (true)
        {
            ManualTimer? next;
            lock (_timers)
            {
                next = _timers.Where(t => t.DueMs <= target).MinBy(t => t.DueMs);
            }

            if (next is null)
            {
                break;
            }

            Interlocked.Exchange(ref _nowMs, Math.Max(NowMs, next.DueMs));
            next.Fire();
        }

        Interlocked.Exchange(ref _nowMs, target);
    }

    /// <summary>How many timers are waiting (lets a test know background work has started).</summary>
    public int ActiveTimers
    {
        get
        {
            lock (_timers)
            {
                return _timers.Count(t => t.DueMs != long.MaxValue);
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        lock (_timers)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private long _periodMs = -1;

        public long DueMs { get; private set; } = long.MaxValue;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            DueMs = dueTime == Timeout.InfiniteTimeSpan ? long.MaxValue : owner.NowMs + (long)dueTime.TotalMilliseconds;
            _periodMs = period == Timeout.InfiniteTimeSpan ? -1 : (long)period.TotalMilliseconds;
            return true;
        }

        public void Fire()
        {
            DueMs = _periodMs > 0 ? DueMs + _periodMs : long.MaxValue;
            callback(state);
        }

        public void Dispose()
        {
            DueMs = long.MaxValue;
            lock (owner._timers)
            {
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A temporary directory removed at the end of the test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => System.IO.Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "osprey-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Batches
{
    /// <summary>A batch of records "key-i" → "value-i" with timestamps starting at <paramref name="timestamp"/>.</summary>
    public static byte[] Make(int count, long timestamp = 1_700_000_000_000, string prefix = "value", CompressionType compression = CompressionType.None, int valueSize = 0)
    {
        using var builder = new RecordBatchBuilder(compression);
        for (var i = 0; i < count; i++)
        {
            var value = valueSize > 0 ? new string('v', valueSize) : $"{prefix}-{i}";
            builder.Append(timestamp + i, Encoding.UTF8.GetBytes($"key-{i}"), Encoding.UTF8.GetBytes(value));
        }

        return builder.ToArray();
    }

    /// <summary>Every record in the bytes as (offset, timestamp, key, value).</summary>
    public static List<(long Offset, long Timestamp, string? Key, string? Value)> Records(ReadOnlySpan<byte> bytes)
    {
        var result = new List<(long, long, string?, string?)>();
        using var buffer = new PooledBufferWriter();
        foreach (var batch in RecordBatch.Enumerate(bytes))
        {
            Assert.True(batch.VerifyCrc());
            foreach (var record in batch.GetRecords(buffer))
            {
                result.Add((record.Offset, record.Timestamp, record.IsKeyNull ? null : Encoding.UTF8.GetString(record.Key), record.IsValueNull ? null : Encoding.UTF8.GetString(record.Value)));
            }
        }

        return result;
    }

    /// <summary>Reads the whole log from <paramref name="from"/> batch by batch.</summary>
    public static List<(long Offset, long Timestamp, string? Key, string? Value)> ReadAll(PartitionLog log, long from = -1)
    {
        var result = new List<(long, long, string?, string?)>();
        var offset = from < 0 ? log.LogStartOffset : from;
        while (offset < log.LogEndOffset)
        {
            var read = log.Read(offset, 1 << 20);
            if (read.Region is null)
            {
                break;
            }

            var records = Records(PartitionLog.ReadBytes(read));
            result.AddRange(records.Where(r => r.Item1 >= offset));
            offset = RecordBatchHeader.Parse(read.Region.Value.ToArray()).NextOffset;
            foreach (var batch in RecordBatch.Enumerate(PartitionLog.ReadBytes(read)))
            {
                offset = Math.Max(offset, batch.Header.NextOffset);
            }
        }

        return result;
    }
}
