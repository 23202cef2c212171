using Confluent.Kafka;
using Osprey.Broker.Tests;
using Osprey.Load;

namespace Osprey.Cli.Tests;

/// <summary>The load tool's librdkafka C API path (--api c): what it counts is what the broker really holds.</summary>
public class LoadToolTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheCApiProducesAndConsumesEveryRecord()
    {
        await using var broker = await TestBroker.StartAsync();
        using var target = Target.Broker(broker.Bootstrap);
        var settings = new LoadSettings { Bootstrap = broker.Bootstrap, Topic = "native", Records = 20_000, RecordSize = 50, Partitions = 3, Producers = 2, Consumers = 2, Api = "c", Acks = Acks.All };

        var produced = await NativeWorkloads.ProduceAsync(target, settings);
        Assert.Equal((20_000L, 20_000L * 50, 0L), (produced.Records, produced.Bytes, produced.Errors));

        // Confluent.Kafka sees the 20,000 records (plus one warm-up record per producer) over the three partitions.
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "check" }).Build();
        var total = Enumerable.Range(0, 3).Sum(p => consumer.QueryWatermarkOffsets(new TopicPartition("native", p), TimeSpan.FromSeconds(10)).High);
        Assert.Equal(20_002, total);

        var consumed = await NativeWorkloads.ConsumeAsync(target, settings with { Records = 20_002 });
        Assert.Equal((20_002L, 20_002L * 50, 0L), (consumed.Records, consumed.Bytes, consumed.Errors));

        // The clock ran from the start of consuming to the last record: the first record came within it.
        Assert.NotNull(consumed.FirstRecordMs);
        Assert.InRange(consumed.FirstRecordMs.Value, 0, consumed.Seconds * 1000);
        Assert.Contains("first record after", consumed.Line(), StringComparison.Ordinal);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AConsumerThatFailsBeforeItIsReadyDoesNotHoldTheOthersBack()
    {
        using var clock = new ConsumeClock(2);
        var ready = Task.Run(
            () =>
            {
                clock.ReadyAndWait();
                clock.Arrived();
            },
            TestContext.Current.CancellationToken);
        clock.Abandon();
        clock.Start();
        await ready.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.NotNull(clock.FirstRecordMs);
    }

    [Fact]
    public void ASettingLibrdkafkaRefusesIsReportedByName()
    {
        var e = Assert.Throws<ArgumentException>(() => RdKafka.Create(RdKafka.Producer, [new("no.such.setting", "1")]));
        Assert.Contains("no.such.setting", e.Message, StringComparison.Ordinal);
    }
}
