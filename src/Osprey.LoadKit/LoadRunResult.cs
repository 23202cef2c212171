using System.Globalization;

namespace Osprey.LoadKit;

/// <summary>
/// What one load run measured, as <c>osprey bench</c> and bench/Osprey.Load both report it: one summary line, the
/// median of several runs, and a JSON shape. <see cref="Target"/> names what was loaded ("broker", "mock"; empty
/// when there is only one), <see cref="Acked"/> is e2e's send-to-acknowledgement latency.
/// </summary>
public sealed record LoadRunResult(string Mode, string Target, long Records, long Bytes, double Seconds, long Errors, LatencyHistogram? Latency = null, LatencyHistogram? Acked = null)
{
    /// <summary>The broker's peak resident memory during the run, when it runs on this machine.</summary>
    public long? BrokerRss { get; init; }

    /// <summary>Consume: milliseconds from the timed start to the first record (how long the first fetch took).</summary>
    public double? FirstRecordMs { get; init; }

    public double RecordsPerSecond => Seconds > 0 ? Records / Seconds : 0;

    public double MegabytesPerSecond => Seconds > 0 ? Bytes / Seconds / 1_000_000 : 0;

    /// <summary>The run with the median throughput (or, with latencies, the median p99).</summary>
    public static LoadRunResult Median(IReadOnlyList<LoadRunResult> runs)
    {
        var ordered = runs[0].Latency is null ? runs.OrderBy(r => r.RecordsPerSecond).ToList() : runs.OrderBy(r => r.Latency!.Percentile(99)).ToList();
        return ordered[ordered.Count / 2];
    }

    /// <summary>The summary line: throughput, or latency percentiles in milliseconds.</summary>
    public string Line()
    {
        var head = $"{Mode,-7} {(Target.Length > 0 ? $"{Target,-6} " : "")}{Records,12:N0} records";
        var body = Latency is { } h
            ? $"  p50 {Ms(h.Percentile(50))}  p95 {Ms(h.Percentile(95))}  p99 {Ms(h.Percentile(99))}  p99.9 {Ms(h.Percentile(99.9))}  max {Ms(h.Max)} ms" +
              (Acked is { Count: > 0 } a ? $"; acked p50 {Ms(a.Percentile(50))}  p99 {Ms(a.Percentile(99))} ms" : "")
            : $"  {RecordsPerSecond,12:N0} records/s  {MegabytesPerSecond,8:F1} MB/s  in {Seconds:F2} s";
        return head + body + (FirstRecordMs is { } first ? $"  first record after {first.ToString("F0", CultureInfo.InvariantCulture)} ms" : "") + $"  ({Errors} errors)" + (BrokerRss is { } rss ? $"  broker RSS {rss / 1_048_576:N0} MB" : "");
    }

    /// <summary>The figures as an object for JSON (latencies in milliseconds).</summary>
    public object ToJson() => new
    {
        mode = Mode,
        target = Target,
        records = Records,
        bytes = Bytes,
        seconds = Seconds,
        recordsPerSecond = RecordsPerSecond,
        megabytesPerSecond = MegabytesPerSecond,
        errors = Errors,
        brokerRssBytes = BrokerRss,
        firstRecordMs = FirstRecordMs,
        latencyMs = Latency is { } h
            ? new { p50 = h.Percentile(50) / 1000.0, p95 = h.Percentile(95) / 1000.0, p99 = h.Percentile(99) / 1000.0, p999 = h.Percentile(99.9) / 1000.0, max = h.Max / 1000.0, mean = h.Mean / 1000.0 }
            : null,
        ackLatencyMs = Acked is { Count: > 0 } a
            ? new { p50 = a.Percentile(50) / 1000.0, p99 = a.Percentile(99) / 1000.0, p999 = a.Percentile(99.9) / 1000.0, max = a.Max / 1000.0 }
            : null,
    };

    private static string Ms(long micros) => (micros / 1000.0).ToString("F2", CultureInfo.InvariantCulture);
}
