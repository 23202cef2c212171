using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Osprey.Storage;

/// <summary>Sleeps for sub-millisecond spans (Thread.Sleep rounds up to whole milliseconds).</summary>
internal static partial class PreciseSleep
{
    /// <summary>Sleeps about <paramref name="stopwatchTicks"/> (Stopwatch ticks), never spinning.</summary>
    public static void For(long stopwatchTicks)
    {
        var micros = stopwatchTicks * 1_000_000 / Stopwatch.Frequency;
        if (micros <= 0)
        {
            return;
        }

        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            _ = MicroSleep((uint)Math.Min(micros, 1_000_000));
        }
        else
        {
            Thread.Sleep(TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, micros * 10)));
        }
    }

    [LibraryImport("libc", EntryPoint = "usleep")]
    private static partial int MicroSleep(uint microseconds);
}
