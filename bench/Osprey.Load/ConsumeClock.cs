using System.Diagnostics;

namespace Osprey.Load;

/// <summary>
/// Times a consume run the way produce is timed: from the moment every consumer is connected and knows its
/// partitions' leader until the last record arrives. Client start-up (connections, metadata, and librdkafka's
/// 500 ms retry timer when a partition is started before its leader is known) and teardown stay outside, and
/// are reported on their own as the time to the first record.
/// </summary>
internal sealed class ConsumeClock(int consumers) : IDisposable
{
    private readonly CountdownEvent _ready = new(consumers);
    private readonly ManualResetEventSlim _go = new();
    private long _started;
    private long _firstRecord;
    private long _lastRecord;

    /// <summary>Called by each consumer once it is set up; returns when all are and the clock has started.</summary>
    public void ReadyAndWait()
    {
        _ready.Signal();
        _go.Wait();
    }

    /// <summary>A consumer that gives up before it is ready still lets the others start.</summary>
    public void Abandon()
    {
        if (!_go.IsSet)
        {
            _ready.Signal();
        }
    }

    /// <summary>Waits until every consumer is ready, then starts the clock.</summary>
    public void Start()
    {
        _ready.Wait();
        _started = Stopwatch.GetTimestamp();
        _go.Set();
    }

    /// <summary>Notes that records arrived now.</summary>
    public void Arrived()
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.CompareExchange(ref _firstRecord, now, 0);
        long seen;
        while ((seen = Interlocked.Read(ref _lastRecord)) < now && Interlocked.CompareExchange(ref _lastRecord, now, seen) != seen)
        {
        }
    }

    /// <summary>Seconds from the start to the last record (0 when none arrived).</summary>
    public double Seconds => _lastRecord == 0 ? 0 : Stopwatch.GetElapsedTime(_started, _lastRecord).TotalSeconds;

    /// <summary>Milliseconds from the start to the first record, or null when none arrived.</summary>
    public double? FirstRecordMs => _firstRecord == 0 ? null : Stopwatch.GetElapsedTime(_started, _firstRecord).TotalMilliseconds;

    public void Dispose()
    {
        _ready.Dispose();
        _go.Dispose();
    }
}
