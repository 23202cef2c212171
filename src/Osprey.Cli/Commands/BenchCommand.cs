using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Osprey.Client;
using Osprey.LoadKit;
using Osprey.Protocol.Records;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey bench produce|consume|e2e</c>: load a Kafka-compatible cluster with Osprey.Client and report records/s,
/// MB/s or latency percentiles, with a live progress line on stderr, one summary line per run, the median of several
/// runs, and the broker's resident memory when it runs on this machine. For comparisons with other brokers on the
/// reference client, bench/Osprey.Load does the same on librdkafka.
/// </summary>
internal static class BenchCommand
{
    private delegate Task<LoadRunResult> Workload(KafkaClient client, BenchSettings settings, BenchProgress progress, CancellationToken cancellationToken);

    public static Command Create() => new("bench", "Measure a cluster: produce, consume and end-to-end latency.")
    {
        Mode("produce", "Produce records as fast as allowed (or at --rate); report records/s and MB/s.", BenchWorkloads.ProduceAsync, new BenchSettings { Topic = "" }),
        Mode("consume", "Consume --records records from the topic's start (filled first when it holds fewer); report records/s and MB/s.", BenchWorkloads.ConsumeAsync, new BenchSettings { Topic = "" }),
        Mode("e2e", "End-to-end latency at a fixed --rate: percentiles from each record's due send time to its arrival.", BenchWorkloads.EndToEndAsync, new BenchSettings { Topic = "", Acks = -1, Partitions = 1, Rate = 2000 }),
    };

    private static Command Mode(string name, string description, Workload workload, BenchSettings d)
    {
        var bootstrap = ClientCommand.Bootstrap();
        var topic = new Option<string?>("--topic", "-t") { Description = "Topic (default osprey-bench-<mode>-<size>b-<partitions>p), created when missing." };
        var records = new Option<long>("--records", "-n") { Description = "Records to produce or consume.", DefaultValueFactory = _ => d.Records };
        var size = new Option<int>("--record-size", "-s") { Description = "Record value size in bytes.", DefaultValueFactory = _ => d.RecordSize };
        var partitions = new Option<int>("--partitions", "-p") { Description = "Partitions of the topic when it is created.", DefaultValueFactory = _ => d.Partitions };
        var acks = new Option<string>("--acks") { Description = "all, 1 or 0.", DefaultValueFactory = _ => d.Acks == -1 ? "all" : d.Acks.ToString(CultureInfo.InvariantCulture) };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var batch = new Option<int>("--batch-bytes") { Description = "Most record bytes in one batch.", DefaultValueFactory = _ => d.BatchBytes };
        var inFlight = new Option<int>("--max-in-flight") { Description = "Produce requests in flight per producer.", DefaultValueFactory = _ => d.MaxInFlight };
        var compression = new Option<string>("--compression", "-z") { Description = "none, gzip, snappy, lz4 or zstd.", DefaultValueFactory = _ => "none" };
        compression.AcceptOnlyFromAmong("none", "gzip", "snappy", "lz4", "zstd");
        var rate = new Option<double>("--rate") { Description = "Records per second over all producers (0: as fast as possible).", DefaultValueFactory = _ => d.Rate };
        var producers = new Option<int>("--producers") { Description = "Concurrent producers.", DefaultValueFactory = _ => d.Producers };
        var consumers = new Option<int>("--consumers") { Description = "Concurrent consumers (partitions split between them).", DefaultValueFactory = _ => d.Consumers };
        var duration = new Option<double>("--duration") { Description = "e2e: seconds measured after the warm-up.", DefaultValueFactory = _ => d.DurationSeconds };
        var warmup = new Option<double>("--warmup") { Description = "e2e: seconds sent before measuring.", DefaultValueFactory = _ => d.WarmupSeconds };
        var runs = new Option<int>("--runs") { Description = "Runs; with more than one, the median is printed too.", DefaultValueFactory = _ => 1 };
        var json = new Option<string?>("--json") { Description = "Write every run's figures to this file as JSON." };
        var command = new Command(name, description) { bootstrap, topic, records, size, partitions, acks, batch, inFlight, compression, rate, producers, consumers, duration, warmup, runs, json };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var settings = d with
            {
                Records = Positive(result.GetValue(records), "--records"),
                RecordSize = (int)Positive(result.GetValue(size), "--record-size"),
                Partitions = (int)Positive(result.GetValue(partitions), "--partitions"),
                Acks = result.GetValue(acks) switch { "0" => (short)0, "1" => (short)1, _ => (short)-1 },
                BatchBytes = (int)Positive(result.GetValue(batch), "--batch-bytes"),
                MaxInFlight = (int)Positive(result.GetValue(inFlight), "--max-in-flight"),
                Compression = result.GetValue(compression) switch
                {
                    "gzip" => CompressionType.Gzip,
                    "snappy" => CompressionType.Snappy,
                    "lz4" => CompressionType.Lz4,
                    "zstd" => CompressionType.Zstd,
                    _ => CompressionType.None,
                },
                Rate = result.GetValue(rate) >= 0 ? result.GetValue(rate) : throw new ArgumentException("--rate must not be negative."),
                Producers = (int)Positive(result.GetValue(producers), "--producers"),
                Consumers = (int)Positive(result.GetValue(consumers), "--consumers"),
                DurationSeconds = result.GetValue(duration) > 0 ? result.GetValue(duration) : throw new ArgumentException("--duration must be above 0."),
                WarmupSeconds = result.GetValue(warmup) >= 0 ? result.GetValue(warmup) : throw new ArgumentException("--warmup must not be negative."),
                Topic = "",
                Bootstrap = result.GetValue(bootstrap)!,
            };
            settings = settings with { Topic = result.GetValue(topic) ?? $"osprey-bench-{name}-{settings.RecordSize}b-{settings.Partitions}p" };
            return await RunAsync(client, name, workload, settings, result.GetValue(bootstrap)!, (int)Positive(result.GetValue(runs), "--runs"), result.GetValue(json), cancellationToken);
        }));
        return command;
    }

    private static async Task<int> RunAsync(KafkaClient client, string mode, Workload workload, BenchSettings settings, string bootstrap, int runs, string? json, CancellationToken cancellationToken)
    {
        var brokerPid = BrokerProcess.FromBootstrap(bootstrap);
        Console.WriteLine(
            $"# {mode}: topic {settings.Topic}, {(mode == "e2e" ? $"rate {settings.Rate:N0}/s for {settings.WarmupSeconds}+{settings.DurationSeconds} s" : $"{settings.Records:N0} records")} × {settings.RecordSize} B, " +
            $"{settings.Partitions} partitions, acks={(settings.Acks == -1 ? "all" : settings.Acks.ToString(CultureInfo.InvariantCulture))}, {settings.Producers} producer(s), {settings.Consumers} consumer(s); " +
            $"{Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC{(brokerPid is { } pid ? $", broker pid {pid}" : "")}");
        var results = new List<LoadRunResult>();
        for (var run = 0; run < runs; run++)
        {
            var progress = new BenchProgress();
            long? peakRss = null;
            using var ticking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var ticker = TickAsync(progress, brokerPid, rss => peakRss = Math.Max(peakRss ?? 0, rss), ticking.Token);
            LoadRunResult result;
            try
            {
                result = await workload(client, settings, progress, cancellationToken);
            }
            finally
            {
                await ticking.CancelAsync();
                await ticker;
            }

            if (brokerPid is { } broker && BrokerProcess.ResidentBytes(broker) is { } last)
            {
                peakRss = Math.Max(peakRss ?? 0, last);
            }

            result = result with { BrokerRss = peakRss };
            results.Add(result);
            Console.WriteLine($"run {run + 1}  {result.Line()}");
        }

        if (runs > 1)
        {
            Console.WriteLine($"median of {runs}  {LoadRunResult.Median(results).Line()}");
        }

        if (json is not null)
        {
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(results.Select(r => r.ToJson()), ClientCommand.Json), cancellationToken);
        }

        return results.Any(r => r.Errors > 0) ? 1 : 0;
    }

    /// <summary>The live progress line (stderr, rewritten in place on a terminal) and the broker's RSS samples.</summary>
    private static async Task TickAsync(BenchProgress progress, int? brokerPid, Action<long> rss, CancellationToken cancellationToken)
    {
        var interactive = !Console.IsErrorRedirected;
        var started = DateTime.UtcNow;
        var (lastRecords, lastBytes, lastTime) = (0L, 0L, started);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var now = DateTime.UtcNow;
                var (records, bytes) = (progress.Records, progress.Bytes);
                var seconds = (now - lastTime).TotalSeconds;
                long? resident = brokerPid is { } pid ? BrokerProcess.ResidentBytes(pid) : null;
                if (resident is { } r)
                {
                    rss(r);
                }

                if (interactive)
                {
                    var line = $"  {(now - started).TotalSeconds,5:F0} s  {records,14:N0} records  {(records - lastRecords) / seconds,12:N0} records/s  {(bytes - lastBytes) / seconds / 1_000_000,8:F1} MB/s" +
                        (resident is { } m ? $"  broker RSS {m / 1_048_576:N0} MB" : "");
                    Console.Error.Write("\r" + line.PadRight(100));
                }

                (lastRecords, lastBytes, lastTime) = (records, bytes, now);
            }
        }
        catch (OperationCanceledException)
        {
        }

        if (interactive)
        {
            Console.Error.Write("\r" + new string(' ', 100) + "\r");
        }
    }

    private static long Positive(long value, string option) =>
        value > 0 ? value : throw new ArgumentException($"{option} must be above 0, not {value}.");
}
