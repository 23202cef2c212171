using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Osprey.Storage;

/// <summary>
/// Storage instruments on <see cref="System.Diagnostics.Metrics"/> (meter <c>Osprey.Storage</c>): how long a
/// group-commit round takes on disk and how many appends and logs it covers.
/// </summary>
public static class StorageMetrics
{
    public const string MeterName = "Osprey.Storage";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Histogram<double> FlushDuration = Meter.CreateHistogram<double>(
        "osprey.flush.duration", unit: "ms", description: "Time one group-commit round spends making its logs durable.");

    private static readonly Histogram<int> FlushAppends = Meter.CreateHistogram<int>(
        "osprey.flush.appends", unit: "{append}", description: "Appends waiting for durability that one group-commit round completes.");

    private static readonly Histogram<int> FlushLogs = Meter.CreateHistogram<int>(
        "osprey.flush.logs", unit: "{log}", description: "Logs one group-commit round makes durable.");

    private static readonly Histogram<double> FsyncDuration = Meter.CreateHistogram<double>(
        "osprey.fsync.duration", unit: "ms", description: "Time one fsync of a segment file takes.");

    internal static void Fsync(long startedTimestamp, long endedTimestamp)
    {
        if (FsyncDuration.Enabled)
        {
            FsyncDuration.Record((endedTimestamp - startedTimestamp) * 1000.0 / Stopwatch.Frequency);
        }
    }

    internal static void FlushRound(int appends, int logs, long startedTimestamp, long endedTimestamp)
    {
        if (FlushDuration.Enabled)
        {
            FlushDuration.Record((endedTimestamp - startedTimestamp) * 1000.0 / Stopwatch.Frequency);
        }

        FlushAppends.Record(appends);
        FlushLogs.Record(logs);
    }
}
