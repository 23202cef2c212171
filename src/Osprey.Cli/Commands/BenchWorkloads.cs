using System.Buffers.Binary;
using System.Diagnostics;
using Osprey.Client;
using Osprey.LoadKit;
using Osprey.Protocol.Records;

namespace Osprey.Cli.Commands;

/// <summary>One <c>osprey bench</c> run's settings.</summary>
internal sealed record BenchSettings
{
    public required string Topic { get; init; }

    /// <summary>The bootstrap servers (e2e consumes through a client of its own).</summary>
    public string Bootstrap { get; init; } = "127.0.0.1:9092";

    public long Records { get; init; } = 1_000_000;

    public int RecordSize { get; init; } = 100;

    public int Partitions { get; init; } = 6;

    /// <summary>-1 (all), 1 or 0.</summary>
    public short Acks { get; init; } = 1;

    /// <summary>Most bytes of record values in one batch.</summary>
    public int BatchBytes { get; init; } = 256 * 1024;

    /// <summary>Produce requests in flight per producer.</summary>
    public int MaxInFlight { get; init; } = 8;

    public CompressionType Compression { get; init; } = CompressionType.None;

    /// <summary>Records per second over all producers; 0 is as fast as possible.</summary>
    public double Rate { get; init; }

    public int Producers { get; init; } = 1;

    public int Consumers { get; init; } = 1;

    public double WarmupSeconds { get; init; } = 2;

    public double DurationSeconds { get; init; } = 30;
}

/// <summary>Counters the live progress line reads while a run goes on.</summary>
internal sealed class BenchProgress
{
    private long _records;
    private long _bytes;

    public long Records => Interlocked.Read(ref _records);

    public long Bytes => Interlocked.Read(ref _bytes);

    public void Add(long records, long bytes)
    {
        Interlocked.Add(ref _records, records);
        Interlocked.Add(ref _bytes, bytes);
    }
}

/// <summary>
/// The loads of <c>osprey bench</c>, on Osprey.Client: produce (batches per partition, several requests in flight
/// per producer), consume (a backlog, filled first when short, read with fetches of every partition) and e2e
/// (latency at a fixed rate, from each record's due time to its arrival at a consumer in the same process).
/// </summary>
internal static class BenchWorkloads
{
    private const int FetchMaxBytes = 50 * 1024 * 1024;
    private const int PartitionMaxBytes = 1024 * 1024;

    public static async Task<LoadRunResult> ProduceAsync(KafkaClient client, BenchSettings settings, BenchProgress progress, CancellationToken cancellationToken)
    {
        var topic = await EnsureTopicAsync(client, settings, cancellationToken);
        var partitions = topic.Partitions.Count;
        var payload = Payload(settings.RecordSize);
        var perBatch = Math.Max(1, settings.BatchBytes / Math.Max(1, settings.RecordSize));
        var pacer = settings.Rate > 0 ? new RatePacer(settings.Rate) : null;
        long claimed = 0, errors = 0;
        var clock = Stopwatch.StartNew();
        var producers = Enumerable.Range(0, settings.Producers).Select(producer => Task.Run(
            async () =>
            {
                using var inFlight = new SemaphoreSlim(settings.MaxInFlight);
                var sends = new List<Task>();
                var partition = producer % partitions;
                while (true)
                {
                    var first = Interlocked.Add(ref claimed, perBatch) - perBatch;
                    if (first >= settings.Records)
                    {
                        break;
                    }

                    var count = (int)Math.Min(perBatch, settings.Records - first);
                    if (pacer is not null)
                    {
                        await WaitUntilAsync(pacer.DueTime(first + count - 1), cancellationToken);
                    }

                    await inFlight.WaitAsync(cancellationToken);
                    var builder = new RecordBatchBuilder(settings.Compression);
                    var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    for (var i = 0; i < count; i++)
                    {
                        builder.Append(now, null, payload);
                    }

                    var leader = await client.LeaderAsync(topic.Name, partition, cancellationToken);
                    sends.Add(SendAsync(leader, partition, builder, count));
                    partition = (partition + 1) % partitions;

                    async Task SendAsync(BrokerConnection to, int into, RecordBatchBuilder batch, int records)
                    {
                        try
                        {
                            await client.ProduceAsync(to, topic.Name, into, batch.Build(), settings.Acks, cancellationToken);
                            progress.Add(records, (long)records * settings.RecordSize);
                        }
                        catch (KafkaException)
                        {
                            Interlocked.Add(ref errors, records);
                        }
                        finally
                        {
                            batch.Dispose();
                            inFlight.Release();
                        }
                    }
                }

                await Task.WhenAll(sends);
            },
            cancellationToken)).ToArray();
        await Task.WhenAll(producers);
        clock.Stop();
        return new LoadRunResult("produce", "", progress.Records, progress.Bytes, clock.Elapsed.TotalSeconds, errors);
    }

    public static async Task<LoadRunResult> ConsumeAsync(KafkaClient client, BenchSettings settings, BenchProgress progress, CancellationToken cancellationToken)
    {
        var topic = await EnsureTopicAsync(client, settings, cancellationToken);
        var starts = new Dictionary<int, long>();
        long held = 0;
        foreach (var partition in topic.Partitions)
        {
            var earliest = await client.ListOffsetAsync(topic.Name, partition.Partition, -2, cancellationToken);
            var latest = await client.ListOffsetAsync(topic.Name, partition.Partition, -1, cancellationToken);
            starts[partition.Partition] = earliest;
            held += latest - earliest;
        }

        if (held < settings.Records)
        {
            Console.Error.WriteLine($"osprey bench: filling '{topic.Name}' with {settings.Records - held:N0} records first...");
            await ProduceAsync(client, settings with { Records = settings.Records - held, Rate = 0, Acks = 1 }, new BenchProgress(), cancellationToken);
        }

        var clock = Stopwatch.StartNew();
        var consumers = Enumerable.Range(0, settings.Consumers).Select(consumer => Task.Run(
            async () =>
            {
                var offsets = starts.Where(s => s.Key % settings.Consumers == consumer).ToDictionary(s => s.Key, s => s.Value);
                if (offsets.Count == 0)
                {
                    return;
                }

                var leader = await client.LeaderAsync(topic.Name, offsets.Keys.First(), cancellationToken);
                while (progress.Records < settings.Records)
                {
                    var fetched = await client.FetchAsync(leader, topic.Name, offsets, 500, FetchMaxBytes, PartitionMaxBytes, cancellationToken);
                    long records = 0, bytes = 0;
                    foreach (var (partition, (batch, _)) in fetched)
                    {
                        if (batch.Count == 0)
                        {
                            continue;
                        }

                        records += batch.Count;
                        foreach (var record in batch)
                        {
                            bytes += record.Value?.Length ?? 0;
                        }

                        offsets[partition] = batch[^1].Offset + 1;
                    }

                    progress.Add(records, bytes);
                }
            },
            cancellationToken)).ToArray();
        await Task.WhenAll(consumers);
        clock.Stop();
        return new LoadRunResult("consume", "", progress.Records, progress.Bytes, clock.Elapsed.TotalSeconds, 0);
    }

    public static async Task<LoadRunResult> EndToEndAsync(KafkaClient client, BenchSettings settings, BenchProgress progress, CancellationToken cancellationToken)
    {
        if (settings.Rate <= 0)
        {
            throw new ArgumentException("e2e needs --rate above 0.");
        }

        var topic = await EnsureTopicAsync(client, settings, cancellationToken);
        var size = Math.Max(settings.RecordSize, sizeof(long));
        var total = (long)(settings.Rate * (settings.WarmupSeconds + settings.DurationSeconds));
        var latency = new LatencyHistogram();
        var acked = new LatencyHistogram();
        var partitions = topic.Partitions.Select(p => p.Partition).ToList();
        var offsets = new Dictionary<int, long>();
        foreach (var partition in partitions)
        {
            offsets[partition] = await client.ListOffsetAsync(topic.Name, partition, -1, cancellationToken);
        }

        // The consumer has a client (so connections) of its own, as in an application: on a shared connection
        // its fetch answers would queue behind produce answers that wait for the fsync.
        await using var consuming = new KafkaClient(settings.Bootstrap, "osprey-bench-consumer");
        var leader = await consuming.LeaderAsync(topic.Name, partitions[0], cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long errors = 0, received = 0;
        var start = Stopwatch.GetTimestamp();
        var warmupEnd = start + (long)(settings.WarmupSeconds * Stopwatch.Frequency);
        var consumer = Task.Run(
            async () =>
            {
                while (Interlocked.Read(ref received) < total - Interlocked.Read(ref errors) && !stop.IsCancellationRequested)
                {
                    var fetched = await consuming.FetchAsync(leader, topic.Name, offsets, 500, FetchMaxBytes, PartitionMaxBytes, stop.Token);
                    var now = Stopwatch.GetTimestamp();
                    foreach (var (partition, (records, _)) in fetched)
                    {
                        foreach (var record in records)
                        {
                            var due = BinaryPrimitives.ReadInt64LittleEndian(record.Value);
                            if (due >= warmupEnd)
                            {
                                latency.Record((now - due) * 1_000_000 / Stopwatch.Frequency);
                            }
                        }

                        if (records.Count > 0)
                        {
                            offsets[partition] = records[^1].Offset + 1;
                            Interlocked.Add(ref received, records.Count);
                            progress.Add(records.Count, (long)records.Count * size);
                        }
                    }
                }
            },
            stop.Token);

        // The sender runs on a thread of its own and never waits for answers: a slow answer delays nothing else.
        long outstanding = 0;
        var sender = Task.Factory.StartNew(
            () =>
            {
                var pacer = new RatePacer(settings.Rate, start);
                for (long i = 0; i < total && !stop.IsCancellationRequested; i++)
                {
                    var due = pacer.WaitFor(i);
                    var value = new byte[size];
                    BinaryPrimitives.WriteInt64LittleEndian(value, due);
                    var builder = new RecordBatchBuilder(settings.Compression);
                    builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, value);
                    Interlocked.Increment(ref outstanding);
                    _ = SendAsync(builder, partitions[(int)(i % partitions.Count)], due);
                }
            },
            cancellationToken,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
        await sender;

        // Whatever has not been answered and arrived 10 s after the last send is lost.
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while ((Interlocked.Read(ref outstanding) > 0 || Interlocked.Read(ref received) < total - Interlocked.Read(ref errors)) && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(10, cancellationToken);
        }

        await stop.CancelAsync();
        try
        {
            await consumer;
        }
        catch (OperationCanceledException)
        {
        }

        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new LoadRunResult("e2e", "", received, received * size, seconds, errors + Math.Max(0, total - errors - received), latency, acked);

        async Task SendAsync(RecordBatchBuilder batch, int partition, long due)
        {
            try
            {
                var to = await client.LeaderAsync(topic.Name, partition, cancellationToken);
                await client.ProduceAsync(to, topic.Name, partition, batch.Build(), settings.Acks, cancellationToken);
                if (due >= warmupEnd)
                {
                    acked.Record((Stopwatch.GetTimestamp() - due) * 1_000_000 / Stopwatch.Frequency);
                }
            }
            catch (KafkaException)
            {
                Interlocked.Increment(ref errors);
            }
            finally
            {
                batch.Dispose();
                Interlocked.Decrement(ref outstanding);
            }
        }
    }

    /// <summary>The topic, created with the requested partitions when it does not exist.</summary>
    private static async Task<TopicInfo> EnsureTopicAsync(KafkaClient client, BenchSettings settings, CancellationToken cancellationToken)
    {
        try
        {
            return await client.TopicAsync(settings.Topic, cancellationToken);
        }
        catch (KafkaException e) when (e.ErrorCode == Protocol.ErrorCode.UnknownTopicOrPartition)
        {
            await client.CreateTopicAsync(settings.Topic, settings.Partitions, 1, new Dictionary<string, string>(), validateOnly: false, cancellationToken);
        }

        // A new topic's partitions get their leaders a moment after it is created.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var topic = await client.TopicAsync(settings.Topic, cancellationToken);
                if (topic.Partitions.Count > 0 && topic.Partitions.All(p => p.Leader >= 0))
                {
                    return topic;
                }
            }
            catch (KafkaException) when (attempt < 50)
            {
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task WaitUntilAsync(long dueTimestamp, CancellationToken cancellationToken)
    {
        var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), dueTimestamp);
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, cancellationToken);
        }
    }

    /// <summary>Record values: random bytes (compressible like real data is not, so compression is not flattered).</summary>
    private static byte[] Payload(int size)
    {
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
