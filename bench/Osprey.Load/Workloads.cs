using System.Buffers.Binary;
using System.Diagnostics;
using Confluent.Kafka;
using Osprey.LoadKit;

namespace Osprey.Load;

/// <summary>The three loads: produce as fast as allowed, consume a backlog, and end-to-end latency at a fixed rate.</summary>
internal static class Workloads
{
    /// <summary>
    /// Produces <see cref="LoadSettings.Records"/> records of <see cref="LoadSettings.RecordSize"/> bytes (no key,
    /// so librdkafka's sticky partitioner spreads them) from several producers, each on its own thread, at the
    /// target rate if one is given; the time runs from the first send to the last delivery report.
    /// </summary>
    public static async Task<LoadRunResult> ProduceAsync(Target target, LoadSettings settings)
    {
        await target.EnsureTopicAsync(settings.Topic, settings.Partitions, settings.ReplicationFactor).ConfigureAwait(false);
        var payload = Payload(settings.RecordSize);
        long delivered = 0, errors = 0;
        var config = settings.ProducerConfig(target.Bootstrap);
        var producers = Enumerable.Range(0, settings.Producers).Select(_ => new ProducerBuilder<byte[], byte[]>(config).Build()).ToList();
        try
        {
            // Connections and metadata first, so the timed part is the load alone.
            foreach (var producer in producers)
            {
                producer.Produce(settings.Topic, new Message<byte[], byte[]> { Value = payload });
                producer.Flush(TimeSpan.FromSeconds(30));
            }

            var clock = Stopwatch.StartNew();
            var threads = producers.Select((producer, index) =>
            {
                var count = (settings.Records / settings.Producers) + (index < settings.Records % settings.Producers ? 1 : 0);
                return Task.Factory.StartNew(
                    () =>
                    {
                        var message = new Message<byte[], byte[]> { Value = payload };
                        void Report(DeliveryReport<byte[], byte[]> report)
                        {
                            if (report.Error.IsError)
                            {
                                Interlocked.Increment(ref errors);
                            }
                            else
                            {
                                Interlocked.Increment(ref delivered);
                            }
                        }

                        var pacer = settings.Rate > 0 ? new RatePacer(settings.Rate / settings.Producers) : null;
                        for (long i = 0; i < count; i++)
                        {
                            pacer?.WaitFor(i);
                            while (true)
                            {
                                try
                                {
                                    producer.Produce(settings.Topic, message, Report);
                                    break;
                                }
                                catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                                {
                                    producer.Poll(TimeSpan.FromMilliseconds(1));
                                }
                            }
                        }

                        producer.Flush(Timeout.InfiniteTimeSpan);
                    },
                    TaskCreationOptions.LongRunning);
            }).ToArray();
            await Task.WhenAll(threads).ConfigureAwait(false);
            clock.Stop();
            return new LoadRunResult("produce", target.Name, delivered, delivered * settings.RecordSize, clock.Elapsed.TotalSeconds, errors);
        }
        finally
        {
            foreach (var producer in producers)
            {
                producer.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads <see cref="LoadSettings.Records"/> records from the start of the topic, which is first filled to that
    /// many if it holds fewer; the partitions are split over several consumers (assigned, no group), each on its
    /// own thread. The time runs from the assignment (every consumer connected and knowing the leaders) to the last
    /// record; see <see cref="ConsumeClock"/>.
    /// </summary>
    /// <summary>The partitions each consumer reads, dealt round-robin; consumers left without one are left out.</summary>
    internal static List<List<TopicPartition>> SplitPartitions(List<TopicPartition> partitions, int consumers) =>
        [.. Enumerable.Range(0, consumers).Select(index => partitions.Where((_, i) => i % consumers == index).ToList()).Where(mine => mine.Count > 0)];

    public static async Task<LoadRunResult> ConsumeAsync(Target target, LoadSettings settings)
    {
        await target.EnsureTopicAsync(settings.Topic, settings.Partitions, settings.ReplicationFactor).ConfigureAwait(false);
        var (partitions, held) = target.Backlog(settings.Topic);
        if (held < settings.Records)
        {
            await ProduceAsync(target, settings with { Records = settings.Records - held, Rate = 0, Acks = Acks.Leader }).ConfigureAwait(false);
        }

        long consumed = 0, bytes = 0;
        var assignments = SplitPartitions(partitions, settings.Consumers)
            .Select(mine => mine.Select(p => new TopicPartitionOffset(p, Offset.Beginning)).ToList())
            .ToList();
        using var clock = new ConsumeClock(assignments.Count);
        var threads = assignments.Select(mine => Task.Factory.StartNew(
            () =>
            {
                IConsumer<Ignore, byte[]>? consumer = null;
                try
                {
                    consumer = new ConsumerBuilder<Ignore, byte[]>(settings.ConsumerConfig(target.Bootstrap, $"osprey-load-{Guid.NewGuid():N}")).Build();
                    using (var metadata = new DependentAdminClientBuilder(consumer.Handle).Build())
                    {
                        metadata.GetMetadata(settings.Topic, TimeSpan.FromSeconds(10));
                    }
                }
                catch
                {
                    clock.Abandon();
                    consumer?.Dispose();
                    throw;
                }

                using (consumer)
                {
                    clock.ReadyAndWait();
                    consumer.Assign(mine);
                    long local = 0, localBytes = 0;
                    var first = true;
                    var idleSince = Stopwatch.GetTimestamp();
                    while (Interlocked.Read(ref consumed) + local < settings.Records && Stopwatch.GetElapsedTime(idleSince) < TimeSpan.FromSeconds(15))
                    {
                        if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } result)
                        {
                            if (first)
                            {
                                clock.Arrived();
                                first = false;
                            }

                            idleSince = Stopwatch.GetTimestamp();
                            local++;
                            localBytes += result.Message.Value?.Length ?? 0;
                            if (local == 10_000)
                            {
                                clock.Arrived();
                                Interlocked.Add(ref consumed, local);
                                Interlocked.Add(ref bytes, localBytes);
                                local = localBytes = 0;
                            }
                        }
                    }

                    if (local > 0)
                    {
                        clock.Arrived();
                    }

                    Interlocked.Add(ref consumed, local);
                    Interlocked.Add(ref bytes, localBytes);
                    consumer.Close();
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();
        clock.Start();
        await Task.WhenAll(threads).ConfigureAwait(false);
        return new LoadRunResult("consume", target.Name, consumed, bytes, clock.Seconds, Math.Max(0, settings.Records - consumed)) { FirstRecordMs = clock.FirstRecordMs };
    }

    /// <summary>
    /// End-to-end latency at a fixed rate: a producer sends at <see cref="LoadSettings.Rate"/> records per second,
    /// each stamped with the time it was due to be sent, and a consumer in this process records, for each, the time
    /// from that due time to its arrival. Measuring from the schedule rather than the actual send keeps stalls of
    /// the sender in the figures (no coordinated omission). The first <see cref="LoadSettings.WarmupSeconds"/> are
    /// not counted.
    /// </summary>
    public static async Task<LoadRunResult> EndToEndAsync(Target target, LoadSettings settings)
    {
        if (settings.Rate <= 0)
        {
            throw new ArgumentException("e2e needs --rate.");
        }

        await target.EnsureTopicAsync(settings.Topic, settings.Partitions, settings.ReplicationFactor).ConfigureAwait(false);
        var (partitions, _) = target.Backlog(settings.Topic);
        var size = Math.Max(settings.RecordSize, sizeof(long));
        var total = (long)(settings.Rate * (settings.WarmupSeconds + settings.DurationSeconds));
        var histogram = new LatencyHistogram();
        var acks = new LatencyHistogram();
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(settings.ConsumerConfig(target.Bootstrap, $"osprey-load-{Guid.NewGuid():N}")).Build();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(p, consumer.QueryWatermarkOffsets(p, TimeSpan.FromSeconds(10)).High)));

        using var producer = new ProducerBuilder<byte[], byte[]>(settings.ProducerConfig(target.Bootstrap)).Build();
        long errors = 0;
        var start = Stopwatch.GetTimestamp();
        var warmupEnd = start + (long)(settings.WarmupSeconds * Stopwatch.Frequency);
        var sender = Task.Factory.StartNew(
            () =>
            {
                var pacer = new RatePacer(settings.Rate, start);
                for (long i = 0; i < total; i++)
                {
                    var due = pacer.WaitFor(i);
                    var value = Payload(size);
                    BinaryPrimitives.WriteInt64LittleEndian(value, due);
                    producer.Produce(settings.Topic, new Message<byte[], byte[]> { Value = value }, r =>
                    {
                        if (r.Error.IsError)
                        {
                            Interlocked.Increment(ref errors);
                        }
                        else if (due >= warmupEnd)
                        {
                            acks.Record((Stopwatch.GetTimestamp() - due) * 1_000_000 / Stopwatch.Frequency);
                        }
                    });
                }

                producer.Flush(Timeout.InfiniteTimeSpan);
            },
            TaskCreationOptions.LongRunning);

        long received = 0;
        var idleSince = Stopwatch.GetTimestamp();
        while (received < total - Interlocked.Read(ref errors) && Stopwatch.GetElapsedTime(idleSince) < TimeSpan.FromSeconds(30))
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(50)) is not { } result)
            {
                continue;
            }

            var now = Stopwatch.GetTimestamp();
            idleSince = now;
            received++;
            var due = BinaryPrimitives.ReadInt64LittleEndian(result.Message.Value);
            if (due >= warmupEnd)
            {
                histogram.Record((now - due) * 1_000_000 / Stopwatch.Frequency);
            }
        }

        await sender.ConfigureAwait(false);
        consumer.Close();
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new LoadRunResult("e2e", target.Name, received, received * size, seconds, errors + (total - received), histogram, acks);
    }

    /// <summary>Random upper-case letters, as Kafka's producer performance tool sends.</summary>
    internal static byte[] Payload(int size)
    {
        var bytes = new byte[size];
        var random = new Random(size);
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)('A' + random.Next(26));
        }

        return bytes;
    }
}
