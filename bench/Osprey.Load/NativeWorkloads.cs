using System.Diagnostics;
using System.Runtime.InteropServices;
using Osprey.LoadKit;

namespace Osprey.Load;

/// <summary>
/// The produce and consume loads on librdkafka's C API (--api c), for figures comparable with native librdkafka
/// tools: the same settings, topics and timing as <see cref="Workloads"/>, without Confluent.Kafka's managed layer.
/// </summary>
internal static class NativeWorkloads
{
    private static long _delivered;
    private static long _failed;

    public static async Task<LoadRunResult> ProduceAsync(Target target, LoadSettings settings)
    {
        await target.EnsureTopicAsync(settings.Topic, settings.Partitions, settings.ReplicationFactor).ConfigureAwait(false);
        var payload = Workloads.Payload(settings.RecordSize);
        var settingsList = Native(settings.ProducerConfig(target.Bootstrap));
        var producers = new List<(IntPtr Client, IntPtr Topic)>();
        try
        {
            for (var i = 0; i < settings.Producers; i++)
            {
                var client = CreateProducer(settingsList);
                producers.Add((client, RdKafka.TopicNew(client, settings.Topic, IntPtr.Zero)));
            }

            // Connections and metadata first, so the timed part is the load alone.
            foreach (var (client, topic) in producers)
            {
                Send(client, topic, payload, 1, null);
                RdKafka.Flush(client, 30_000);
            }

            Interlocked.Exchange(ref _delivered, 0);
            Interlocked.Exchange(ref _failed, 0);
            var clock = Stopwatch.StartNew();
            var threads = producers.Select((producer, index) =>
            {
                var count = (settings.Records / settings.Producers) + (index < settings.Records % settings.Producers ? 1 : 0);
                var pacer = settings.Rate > 0 ? new RatePacer(settings.Rate / settings.Producers) : null;
                return Task.Factory.StartNew(() => Send(producer.Client, producer.Topic, payload, count, pacer), TaskCreationOptions.LongRunning);
            }).ToArray();
            await Task.WhenAll(threads).ConfigureAwait(false);
            clock.Stop();
            var delivered = Interlocked.Read(ref _delivered);
            return new LoadRunResult("produce", target.Name, delivered, delivered * settings.RecordSize, clock.Elapsed.TotalSeconds, Interlocked.Read(ref _failed));
        }
        finally
        {
            foreach (var (client, topic) in producers)
            {
                RdKafka.TopicDestroy(topic);
                RdKafka.Destroy(client);
            }
        }
    }

    private static unsafe IntPtr CreateProducer(List<KeyValuePair<string, string>> settings) => RdKafka.Create(RdKafka.Producer, settings, &OnDelivery);

    /// <summary>Sends <paramref name="count"/> copies of the payload, serving delivery reports as it goes, then flushes.</summary>
    private static unsafe void Send(IntPtr client, IntPtr topic, byte[] payload, long count, RatePacer? pacer)
    {
        fixed (byte* value = payload)
        {
            for (long i = 0; i < count; i++)
            {
                pacer?.WaitFor(i);
                while (RdKafka.Produce(topic, RdKafka.PartitionUnassigned, RdKafka.MessageFlagCopy, value, (nuint)payload.Length, null, 0, IntPtr.Zero) != 0)
                {
                    var error = RdKafka.LastError();
                    if (error != RdKafka.ErrorQueueFull)
                    {
                        throw new InvalidOperationException("rd_kafka_produce failed: " + RdKafka.ErrorName(error));
                    }

                    RdKafka.Poll(client, 1);
                }

                if ((i & 1023) == 0)
                {
                    RdKafka.Poll(client, 0);
                }
            }
        }

        while (RdKafka.Flush(client, 1000) == RdKafka.ErrorTimedOut)
        {
        }
    }

    [UnmanagedCallersOnly]
    private static unsafe void OnDelivery(IntPtr client, RdKafka.Message* message, IntPtr opaque)
    {
        if (message->Error == 0)
        {
            Interlocked.Increment(ref _delivered);
        }
        else
        {
            Interlocked.Increment(ref _failed);
        }
    }

    public static async Task<LoadRunResult> ConsumeAsync(Target target, LoadSettings settings)
    {
        await target.EnsureTopicAsync(settings.Topic, settings.Partitions, settings.ReplicationFactor).ConfigureAwait(false);
        var (partitions, held) = target.Backlog(settings.Topic);
        if (held < settings.Records)
        {
            await ProduceAsync(target, settings with { Records = settings.Records - held, Rate = 0, Acks = Confluent.Kafka.Acks.Leader }).ConfigureAwait(false);
        }

        long consumed = 0, bytes = 0, errors = 0;
        var assignments = Workloads.SplitPartitions(partitions, settings.Consumers).Select(mine => mine.Select(p => p.Partition.Value).ToList()).ToList();
        using var clock = new ConsumeClock(assignments.Count);
        var threads = assignments.Select(mine => Task.Factory.StartNew(
            () =>
            {
                var failed = Consume(target, settings, mine, clock, () => Interlocked.Read(ref consumed), (n, nb) =>
                {
                    Interlocked.Add(ref consumed, n);
                    Interlocked.Add(ref bytes, nb);
                });
                Interlocked.Add(ref errors, failed);
            },
            TaskCreationOptions.LongRunning)).ToArray();
        clock.Start();
        await Task.WhenAll(threads).ConfigureAwait(false);
        return new LoadRunResult("consume", target.Name, consumed, bytes, clock.Seconds, errors + Math.Max(0, settings.Records - consumed)) { FirstRecordMs = clock.FirstRecordMs };
    }

    /// <summary>
    /// One consumer on librdkafka's C API: the given partitions from their start through one queue, in batches,
    /// until <paramref name="total"/> reaches the records asked for or nothing arrives for 15 s. Returns its errors.
    /// It connects and learns the topic's leaders before the clock starts.
    /// </summary>
    private static unsafe long Consume(Target target, LoadSettings settings, List<int> mine, ConsumeClock clock, Func<long> total, Action<long, long> add)
    {
        long errors = 0;
        var client = IntPtr.Zero;
        var topic = IntPtr.Zero;
        var queue = IntPtr.Zero;
        const int BatchSize = 10_000;
        var batch = (RdKafka.Message**)NativeMemory.Alloc(BatchSize, (nuint)sizeof(IntPtr));
        var ready = false;
        try
        {
            client = RdKafka.Create(RdKafka.Consumer, Native(settings.ConsumerConfig(target.Bootstrap, $"osprey-load-{Guid.NewGuid():N}")));
            topic = RdKafka.TopicNew(client, settings.Topic, IntPtr.Zero);
            queue = RdKafka.QueueNew(client);
            RdKafka.LoadMetadata(client, topic, 10_000);
            ready = true;
            clock.ReadyAndWait();
            foreach (var partition in mine)
            {
                if (RdKafka.ConsumeStartQueue(topic, partition, RdKafka.OffsetBeginning, queue) != 0)
                {
                    throw new InvalidOperationException($"cannot start consuming partition {partition}: {RdKafka.ErrorName(RdKafka.LastError())}");
                }
            }

            var idleSince = Stopwatch.GetTimestamp();
            while (total() < settings.Records && Stopwatch.GetElapsedTime(idleSince) < TimeSpan.FromSeconds(15))
            {
                var n = RdKafka.ConsumeBatchQueue(queue, 100, batch, BatchSize);
                long local = 0, localBytes = 0, localErrors = 0;
                for (var i = 0; i < n; i++)
                {
                    var message = batch[i];
                    if (message->Error == 0)
                    {
                        local++;
                        localBytes += (long)message->Length;
                    }
                    else if (message->Error != RdKafka.ErrorPartitionEof)
                    {
                        localErrors++;
                    }

                    RdKafka.MessageDestroy(message);
                }

                if (local > 0)
                {
                    clock.Arrived();
                    idleSince = Stopwatch.GetTimestamp();
                    add(local, localBytes);
                }

                errors += localErrors;
            }

            foreach (var partition in mine)
            {
                RdKafka.ConsumeStop(topic, partition);
            }
        }
        finally
        {
            if (!ready)
            {
                clock.Abandon();
            }

            NativeMemory.Free(batch);
            if (client != IntPtr.Zero)
            {
                RdKafka.QueueDestroy(queue);
                RdKafka.TopicDestroy(topic);
                RdKafka.Destroy(client);
            }
        }

        return errors;
    }

    /// <summary>A Confluent.Kafka config's librdkafka settings (its own "dotnet.*" ones left out).</summary>
    private static List<KeyValuePair<string, string>> Native(IEnumerable<KeyValuePair<string, string>> config) =>
        [.. config.Where(p => !p.Key.StartsWith("dotnet.", StringComparison.Ordinal))];
}
