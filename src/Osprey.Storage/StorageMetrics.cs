using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Osprey.Storage;

/// <summary>
/// Storage instruments on <see cref="System.Diagnostics.Metrics"/> (meter <c>Osprey.Storage</c>): how long a
/// group-commit round takes on disk and how many appends and logs it covers; disk errors, damaged batches and bytes
/// cut by recovery.
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

    private static readonly Counter<long> StorageErrors = Meter.CreateCounter<long>(
        "osprey.storage.errors", unit: "{error}", description: "Appends and flushes the disk refused (KAFKA_STORAGE_ERROR).");

    private static readonly Counter<long> CorruptBatches = Meter.CreateCounter<long>(
        "osprey.storage.corrupt.batches", unit: "{batch}", description: "Batches found damaged below the recovery point (kept, reported).");

    private static readonly Counter<long> TruncatedBytes = Meter.CreateCounter<long>(
        "osprey.storage.truncated.bytes", unit: "By", description: "Bytes recovery cut off (written after the last fsync and torn by a stop).");

    internal static void StorageError() => StorageErrors.Add(1);

    internal static void CorruptBatch() => CorruptBatches.Add(1);

    internal static void Truncated(long bytes) => TruncatedBytes.Add(bytes);

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
