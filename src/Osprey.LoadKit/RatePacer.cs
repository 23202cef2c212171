using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Osprey.LoadKit;

/// <summary>
/// Paces a load at a fixed rate: item <c>i</c> is due <c>i / rate</c> seconds after the start. Latency measured from
/// the due time (not from when the item was actually sent) counts a stall of the sender against the system under
/// test, so the figures are safe from coordinated omission. Waiting sleeps (microsecond sleeps on Linux) and spins
/// only for the last few tens of microseconds: a pacer that spins burns a core that, on a small machine, the broker
/// and the client need, and inflates the very latency it measures.
/// </summary>
public sealed partial class RatePacer
{
    private readonly long _start;
    private readonly double _ticksPerItem;

    public RatePacer(double ratePerSecond, long? startTimestamp = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        _start = startTimestamp ?? Stopwatch.GetTimestamp();
        _ticksPerItem = Stopwatch.Frequency / ratePerSecond;
    }

    /// <summary>When item <paramref name="index"/> is due (Stopwatch ticks).</summary>
    public long DueTime(long index) => _start + (long)(index * _ticksPerItem);

    /// <summary>Blocks until item <paramref name="index"/> is due and returns its due time (Stopwatch ticks).</summary>
    public long WaitFor(long index)
    {
        var due = DueTime(index);
        while (true)
        {
            var left = due - Stopwatch.GetTimestamp();
            if (left <= 0)
            {
                return due;
            }

            var micros = left * 1_000_000 / Stopwatch.Frequency;
            if (micros > 150 && OperatingSystem.IsLinux())
            {
                _ = MicroSleep((uint)(micros - 100));
            }
            else if (micros > 2_000)
            {
                Thread.Sleep(1);
            }
            else
            {
                Thread.SpinWait(20);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "usleep")]
    private static partial int MicroSleep(uint microseconds);
}
