using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Confluent.Kafka;
using Osprey.LoadKit;

namespace Osprey.Load;

/// <summary>
/// osprey-load: a load tool for any Kafka-compatible broker, on Confluent.Kafka (librdkafka). Modes produce,
/// consume and e2e; each run prints one summary line, --runs repeats and prints the medians, --mock runs the same
/// produce load against librdkafka's mock cluster in the same invocation as the client's own ceiling, --json writes every
/// run's figures.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Load tool for Kafka-compatible brokers (Confluent.Kafka / librdkafka " + Library.VersionString + ").");
        root.Subcommands.Add(Mode("produce", "Produce records as fast as allowed (or at --rate) and report records/s and MB/s.", (t, s) => s.Api == "c" ? NativeWorkloads.ProduceAsync(t, s) : Workloads.ProduceAsync(t, s), defaults: s => s));
        root.Subcommands.Add(Mode("consume", "Consume --records records from the topic's start (filled first if it holds fewer) and report records/s and MB/s.", (t, s) => s.Api == "c" ? NativeWorkloads.ConsumeAsync(t, s) : Workloads.ConsumeAsync(t, s), defaults: s => s));
        root.Subcommands.Add(Mode("e2e", "End-to-end latency at a fixed --rate: percentiles from each record's due send time to its arrival.", Workloads.EndToEndAsync, defaults: s => s with { Acks = Acks.All, LingerMs = 0, Partitions = 1, Rate = 2000 }));
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }

    private static Command Mode(string name, string description, Func<Target, LoadSettings, Task<LoadRunResult>> run, Func<LoadSettings, LoadSettings> defaults)
    {
        var d = defaults(new LoadSettings());
        var bootstrap = new Option<string>("--bootstrap", "-b") { Description = "The broker to load.", DefaultValueFactory = _ => d.Bootstrap };
        var topic = new Option<string?>("--topic") { Description = "Topic (default: osprey-load-<mode>-<size>b-<partitions>p)." };
        var records = new Option<long>("--records", "-n") { Description = "Records to produce or consume.", DefaultValueFactory = _ => d.Records };
        var size = new Option<int>("--record-size", "-s") { Description = "Record value size in bytes.", DefaultValueFactory = _ => d.RecordSize };
        var partitions = new Option<int>("--partitions", "-p") { Description = "Partitions of the topic when it is created.", DefaultValueFactory = _ => d.Partitions };
        var replication = new Option<short>("--replication-factor", "-r") { Description = "Replicas per partition of the topic when it is created.", DefaultValueFactory = _ => d.ReplicationFactor };
        var acks = new Option<string>("--acks") { Description = "0, 1 or all.", DefaultValueFactory = _ => d.Acks == Acks.All ? "all" : ((int)d.Acks).ToString(CultureInfo.InvariantCulture) };
        var linger = new Option<double>("--linger-ms") { Description = "linger.ms.", DefaultValueFactory = _ => d.LingerMs };
        var batch = new Option<int>("--batch-size") { Description = "batch.size in bytes.", DefaultValueFactory = _ => d.BatchSize };
        var compression = new Option<string>("--compression") { Description = "none, gzip, snappy, lz4 or zstd.", DefaultValueFactory = _ => "none" };
        var rate = new Option<double>("--rate") { Description = "Records per second over all producers (0: as fast as possible).", DefaultValueFactory = _ => d.Rate };
        var producers = new Option<int>("--producers") { Description = "Producer instances (each on its own thread).", DefaultValueFactory = _ => d.Producers };
        var consumers = new Option<int>("--consumers") { Description = "Consumer instances (each on its own thread).", DefaultValueFactory = _ => d.Consumers };
        var duration = new Option<double>("--duration") { Description = "e2e: seconds measured after the warm-up.", DefaultValueFactory = _ => d.DurationSeconds };
        var warmup = new Option<double>("--warmup") { Description = "e2e: seconds sent before measuring.", DefaultValueFactory = _ => d.WarmupSeconds };
        var runs = new Option<int>("--runs") { Description = "Runs; with more than one, the medians are printed too.", DefaultValueFactory = _ => 1 };
        var mock = new Option<bool>("--mock") { Description = "Also run against librdkafka's mock cluster (the client's ceiling), alternating with the broker." };
        var mockOnly = new Option<bool>("--mock-only") { Description = "Run against the mock cluster only." };
        var json = new Option<string?>("--json") { Description = "Write every run's figures to this file as JSON." };
        var extra = new Option<string[]>("--set", "-X") { Description = "Extra librdkafka setting for every client (key=value).", AllowMultipleArgumentsPerToken = false };
        var api = new Option<string>("--api") { Description = "produce/consume client API: dotnet (Confluent.Kafka) or c (librdkafka's C API called directly, like native tools).", DefaultValueFactory = _ => d.Api };
        api.AcceptOnlyFromAmong("dotnet", "c");
        var command = new Command(name, description)
        {
            bootstrap, topic, records, size, partitions, replication, acks, linger, batch, compression, rate, producers, consumers, duration, warmup, runs, mock, mockOnly, json, extra, api,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = d with
            {
                Bootstrap = result.GetValue(bootstrap)!,
                Records = result.GetValue(records),
                RecordSize = result.GetValue(size),
                Partitions = result.GetValue(partitions),
                ReplicationFactor = result.GetValue(replication),
                Acks = result.GetValue(acks) switch
                {
                    "all" or "-1" => Acks.All,
                    "1" => Acks.Leader,
                    "0" => Acks.None,
                    var other => throw new ArgumentException($"--acks must be 0, 1 or all, not {other}."),
                },
                LingerMs = result.GetValue(linger),
                BatchSize = result.GetValue(batch),
                Compression = Enum.Parse<CompressionType>(result.GetValue(compression)!, ignoreCase: true),
                Rate = result.GetValue(rate),
                Producers = Math.Max(1, result.GetValue(producers)),
                Consumers = Math.Max(1, result.GetValue(consumers)),
                DurationSeconds = result.GetValue(duration),
                WarmupSeconds = result.GetValue(warmup),
                Extra = [.. (result.GetValue(extra) ?? []).Select(Split)],
                Api = result.GetValue(api)!,
            };
            settings = settings with { Topic = result.GetValue(topic) ?? $"osprey-load-{name}-{settings.RecordSize}b-{settings.Partitions}p{(settings.ReplicationFactor > 1 ? $"-rf{settings.ReplicationFactor}" : "")}" };
            return await RunAsync(name, run, settings, Math.Max(1, result.GetValue(runs)), result.GetValue(mock), result.GetValue(mockOnly), result.GetValue(json)).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(string mode, Func<Target, LoadSettings, Task<LoadRunResult>> run, LoadSettings settings, int runs, bool mock, bool mockOnly, string? json)
    {
        Console.WriteLine($"# {mode}: {Describe(mode, settings)}; librdkafka {Library.VersionString}, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        var results = new List<LoadRunResult>();
        for (var i = 0; i < runs; i++)
        {
            if (!mockOnly)
            {
                using var broker = Target.Broker(settings.Bootstrap);
                results.Add(Report(i, await WithRssAsync(BrokerProcess.FromBootstrap(settings.Bootstrap), () => run(broker, settings)).ConfigureAwait(false)));
            }

            if ((mock || mockOnly) && mode != "produce")
            {
                // The mock cluster answers a fetch only when fetch.wait.max.ms runs out and keeps only the last
                // ~180,000 records of a partition: neither latency nor backlog reads say anything about the client.
                Console.WriteLine($"(no mock reference for {mode}: the mock cluster does not wake waiting fetches and keeps few records)");
                mock = mockOnly = false;
            }

            if (mock || mockOnly)
            {
                using var reference = Target.Mock();
                results.Add(Report(i, await run(reference, settings).ConfigureAwait(false)));
            }
        }

        if (runs > 1)
        {
            foreach (var group in results.GroupBy(r => r.Target))
            {
                Console.WriteLine($"median of {runs}  {LoadRunResult.Median(group.ToList()).Line()}");
            }
        }

        if (results.Any(r => r.Target == "broker") && results.Any(r => r.Target == "mock") && mode != "e2e")
        {
            var broker = LoadRunResult.Median(results.Where(r => r.Target == "broker").ToList());
            var reference = LoadRunResult.Median(results.Where(r => r.Target == "mock").ToList());
            Console.WriteLine($"broker / mock: {broker.RecordsPerSecond / reference.RecordsPerSecond:F2}");
        }

        if (json is not null)
        {
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(results.Select(r => r.ToJson()), new JsonSerializerOptions { WriteIndented = true })).ConfigureAwait(false);
        }

        return results.Any(r => r.Errors > 0) ? 1 : 0;
    }

    /// <summary>Runs one load while sampling the local broker's resident memory every 200 ms; keeps the peak.</summary>
    private static async Task<LoadRunResult> WithRssAsync(int? pid, Func<Task<LoadRunResult>> run)
    {
        if (pid is not { } broker)
        {
            return await run().ConfigureAwait(false);
        }

        long peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
            do
            {
                peak = Math.Max(peak, BrokerProcess.ResidentBytes(broker) ?? 0);
            }
            while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false));
        });
        var result = await run().ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await sampler.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        return result with { BrokerRss = Math.Max(peak, BrokerProcess.ResidentBytes(broker) ?? 0) };
    }

    private static LoadRunResult Report(int run, LoadRunResult result)
    {
        Console.WriteLine($"run {run + 1}  {result.Line()}");
        return result;
    }

    private static string Describe(string mode, LoadSettings s) =>
        $"topic {s.Topic}, {s.Records:N0} records × {s.RecordSize} B, {s.Partitions} partitions{(s.ReplicationFactor > 1 ? $" × {s.ReplicationFactor} replicas" : "")}, acks={(s.Acks == Acks.All ? "all" : ((int)s.Acks).ToString(CultureInfo.InvariantCulture))}, " +
        $"linger.ms={s.LingerMs}, batch.size={s.BatchSize}, compression={s.Compression.ToString().ToLowerInvariant()}, " +
        (mode == "e2e" ? "" : $"{s.Api} API, ") + (mode == "e2e" ? $"rate {s.Rate:N0}/s for {s.WarmupSeconds}+{s.DurationSeconds} s" : $"{s.Producers} producer(s), {s.Consumers} consumer(s){(s.Rate > 0 ? $", rate {s.Rate:N0}/s" : "")}");

    private static KeyValuePair<string, string> Split(string setting)
    {
        var at = setting.IndexOf('=', StringComparison.Ordinal);
        return at > 0 ? new(setting[..at], setting[(at + 1)..]) : throw new ArgumentException($"--set takes key=value, not {setting}.");
    }
}
