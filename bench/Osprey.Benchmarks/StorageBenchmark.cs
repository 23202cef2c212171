using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Benchmarks;

/// <summary>
/// End-to-end storage throughput: append (1 KB records in 16 KB and 1 MB batches, durable with group commit and
/// not), sequential read, and recovery of an unclean log — next to this machine's sequential write speed with
/// fdatasync as <c>dd conv=fdatasync</c> measures it.
/// Usage: storage [--dir DIR] [--mb N] [--runs N] [--writers N] [--partitions N] [--in-flight N] [--batches 16,1024] [--writeback-bytes N]
/// </summary>
public static partial class StorageBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var dir = Option(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "osprey-storage-bench");
        var megabytes = int.Parse(Option(args, "--mb") ?? "1024", CultureInfo.InvariantCulture);
        var runs = int.Parse(Option(args, "--runs") ?? "3", CultureInfo.InvariantCulture);
        var writers = int.Parse(Option(args, "--writers") ?? "32", CultureInfo.InvariantCulture);
        var partitions = int.Parse(Option(args, "--partitions") ?? "8", CultureInfo.InvariantCulture);
        var inFlight = int.Parse(Option(args, "--in-flight") ?? "5", CultureInfo.InvariantCulture);
        var writeback = long.Parse(Option(args, "--writeback-bytes") ?? LogWriteback.DefaultThresholdBytes.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var batchSizes = (Option(args, "--batches") ?? "16,1024").Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray();
        Directory.CreateDirectory(dir);
        var results = new Dictionary<string, List<double>>();
        void Add(string name, double value) => (results.TryGetValue(name, out var l) ? l : results[name] = []).Add(value);

        for (var run = 0; run < runs; run++)
        {
            Add("dd conv=fdatasync (MB/s)", DdFdatasync(dir, megabytes));
            foreach (var batchKb in batchSizes)
            {
                Add($"append {batchKb} KB batches, no fsync (MB/s)", await AppendAsync(dir, megabytes, batchKb, durable: false, writers, partitions, inFlight, writeback));
                Add($"append {batchKb} KB batches, durable group commit (MB/s)", await AppendAsync(dir, megabytes, batchKb, durable: true, writers, partitions, inFlight, writeback));
            }

            var (readMbps, recoverySecondsPerGb) = ReadAndRecover(dir, megabytes);
            Add("read (MB/s)", readMbps);
            Add("recovery of an unclean log (s per GB)", recoverySecondsPerGb);
        }

        Console.WriteLine($"Storage benchmark: {megabytes} MB per case, {writers} writers on {partitions} partitions, {inFlight} append(s) in flight per writer, osprey.log.writeback.bytes {writeback}, {runs} runs, medians, in {dir}");
        Console.WriteLine($"| case | median | runs |");
        Console.WriteLine($"|---|---:|---|");
        foreach (var (name, values) in results)
        {
            Console.WriteLine($"| {name} | {Median(values):F1} | {string.Join(", ", values.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)))} |");
        }

        var dd = Median(results["dd conv=fdatasync (MB/s)"]);
        foreach (var batchKb in batchSizes)
        {
            var durable = Median(results[$"append {batchKb} KB batches, durable group commit (MB/s)"]);
            Console.WriteLine($"durable append, {batchKb} KB batches: {durable / dd * 100:F0} % of dd conv=fdatasync");
        }

        Directory.Delete(dir, recursive: true);
        return 0;
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>Runs dd itself: write N MB of zeros in 1 MB blocks, one fdatasync at the end.</summary>
    private static double DdFdatasync(string dir, int megabytes)
    {
        var file = Path.Combine(dir, "dd.bin");
        var start = new ProcessStartInfo("dd", [$"if=/dev/zero", $"of={file}", "bs=1M", $"count={megabytes}", "conv=fdatasync"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardError.ReadToEnd();
        process.WaitForExit();
        File.Delete(file);
        var match = DdLine().Match(output);
        if (!match.Success)
        {
            throw new InvalidOperationException("unexpected dd output: " + output);
        }

        var bytes = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        var seconds = double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        return bytes / seconds / 1e6;
    }

    [GeneratedRegex(@"^(\d+) bytes .* copied, ([\d.]+) s", RegexOptions.Multiline)]
    private static partial Regex DdLine();

    private static byte[] MakeBatch(int batchKb)
    {
        using var builder = new RecordBatchBuilder();
        var value = new byte[1024];
        new Random(1).NextBytes(value);
        // About batchKb KB in all: a 1 MB batch must stay under the default max.message.bytes (1048588).
        for (var i = 0; i < batchKb - (batchKb / 64); i++)
        {
            builder.Append(1_700_000_000_000 + i, null, value);
        }

        return builder.ToArray();
    }

    /// <summary>
    /// Appends N MB to the partitions from concurrent writers. Durable: each writer keeps at most
    /// <paramref name="inFlight"/> appends waiting for their fsync, as a producer with acks=all and
    /// max.in.flight.requests.per.connection = N does (1: it awaits each batch before sending the next).
    /// </summary>
    private static async Task<double> AppendAsync(string dir, int megabytes, int batchKb, bool durable, int writers, int partitions, int inFlight, long writebackBytes)
    {
        var data = Path.Combine(dir, "append");
        var batch = MakeBatch(batchKb);
        var totalBatches = (long)megabytes * 1024 * 1024 / batch.Length;
        // The flusher's time on disk (osprey.flush.duration), to tell disk-bound rounds from idle gaps between them.
        double flushMs = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == StorageMetrics.MeterName && instrument.Name == "osprey.flush.duration")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => flushMs += value);
        listener.Start();
        var clock = Stopwatch.StartNew();
        await using (var manager = new LogManager(data, new LogManagerOptions { WritebackBytes = writebackBytes }, TimeProvider.System))
        {
            var logs = Enumerable.Range(0, partitions).Select(p => manager.GetOrCreate("bench", p, new LogConfig())).ToArray();
            var remaining = totalBatches;
            await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
            {
                var log = logs[w % logs.Length];
                var pending = new Queue<Task>();
                while (Interlocked.Decrement(ref remaining) >= 0)
                {
                    if (pending.Count >= inFlight)
                    {
                        await pending.Dequeue();
                    }

                    pending.Enqueue(manager.AppendAsync(log, batch, durable).AsTask());
                }

                while (pending.Count > 0)
                {
                    await pending.Dequeue();
                }
            })));
            clock.Stop();
            if (durable)
            {
                Console.Error.WriteLine($"  {batchKb} KB durable: {totalBatches} appends in {manager.Flusher.Rounds} flush rounds ({totalBatches / (double)Math.Max(1, manager.Flusher.Rounds):F1} per round, {clock.Elapsed.TotalMilliseconds / Math.Max(1, manager.Flusher.Rounds):F2} ms per round, {flushMs / clock.Elapsed.TotalMilliseconds * 100:F0} % of the time on disk)");
            }
        }

        Directory.Delete(data, recursive: true);
        return totalBatches * (double)batch.Length / clock.Elapsed.TotalSeconds / 1e6;
    }

    /// <summary>Writes N MB to one partition, reads it all back, then times recovery after an unclean stop.</summary>
    private static (double ReadMbps, double RecoverySecondsPerGb) ReadAndRecover(string dir, int megabytes)
    {
        var data = Path.Combine(dir, "read", "bench-0");
        var batch = MakeBatch(1024);
        var config = new LogConfig();
        long bytes = 0;
        using (var log = PartitionLog.Open(data, "bench", 0, config, TimeProvider.System))
        {
            var count = (long)megabytes * 1024 * 1024 / batch.Length;
            for (var i = 0; i < count; i++)
            {
                log.Append(batch);
            }

            log.Flush(log.LogEndOffset);
            var buffer = new byte[2 * 1024 * 1024];
            var clock = Stopwatch.StartNew();
            var offset = 0L;
            while (offset < log.LogEndOffset)
            {
                var read = log.Read(offset, 1024 * 1024);
                var region = read.Region!.Value;
                region.CopyTo(buffer);
                bytes += region.Length;
                offset = RecordBatchHeader.Parse(buffer.AsSpan(0, region.Length)).NextOffset;
            }

            clock.Stop();
            var readMbps = bytes / clock.Elapsed.TotalSeconds / 1e6;

            // Dispose without Close: an unclean stop. Recovery scans and checks every batch from offset 0.
            log.Dispose();
            var recovery = Stopwatch.StartNew();
            using (var recovered = PartitionLog.Open(data, "bench", 0, config, TimeProvider.System, recoveryPoint: 0, cleanShutdown: false))
            {
                recovery.Stop();
                if (recovered.LogEndOffset != count * RecordBatchHeader.Parse(batch).RecordCount)
                {
                    throw new InvalidOperationException("recovery lost data");
                }
            }

            Directory.Delete(Path.GetDirectoryName(data)!, recursive: true);
            return (readMbps, recovery.Elapsed.TotalSeconds / (bytes / 1e9));
        }
    }
}
