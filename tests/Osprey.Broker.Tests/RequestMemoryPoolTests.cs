using Osprey.Broker.Network;

namespace Osprey.Broker.Tests;

public class RequestMemoryPoolTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task RequestsWaitUntilEarlierOnesAreReleasedInArrivalOrder()
    {
        var pool = new RequestMemoryPool(1000);
        await pool.AcquireAsync(600, TestContext.Current.CancellationToken);
        var second = pool.AcquireAsync(600, TestContext.Current.CancellationToken).AsTask();
        var third = pool.AcquireAsync(100, TestContext.Current.CancellationToken).AsTask();
        Assert.False(second.IsCompleted);
        Assert.False(third.IsCompleted); // it would fit, but it came after one that waits: first come, first served

        pool.Release(600);
        await second;
        await third;
        Assert.Equal(700, pool.Used);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ARequestLargerThanTheLimitIsAdmittedAlone()
    {
        var pool = new RequestMemoryPool(1000);
        await pool.AcquireAsync(5000, TestContext.Current.CancellationToken);
        var next = pool.AcquireAsync(1, TestContext.Current.CancellationToken).AsTask();
        Assert.False(next.IsCompleted);
        pool.Release(5000);
        await next;
        Assert.Equal(1, pool.Used);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ACancelledWaitTakesNothingAndLetsTheNextIn()
    {
        var pool = new RequestMemoryPool(1000);
        await pool.AcquireAsync(900, TestContext.Current.CancellationToken);
        using var cancel = new CancellationTokenSource();
        var cancelled = pool.AcquireAsync(500, cancel.Token).AsTask();
        var after = pool.AcquireAsync(50, TestContext.Current.CancellationToken).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        await after;
        pool.Release(900);
        Assert.Equal(50, pool.Used);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task NoLimitNeverWaits()
    {
        var pool = new RequestMemoryPool(-1);
        await pool.AcquireAsync(int.MaxValue, TestContext.Current.CancellationToken);
        await pool.AcquireAsync(int.MaxValue, TestContext.Current.CancellationToken);
        Assert.Equal(0, pool.Used);
    }
}

public class QueuedRequestBytesTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ABrokerWithATinyRequestBudgetStillServesPipelinedClients()
    {
        // queued.max.request.bytes=1: every request is admitted alone, one at a time across all connections.
        await using var broker = await TestBroker.StartAsync(o => o with { Config = Config.BrokerConfig.From(("queued.max.request.bytes", "1"), ("num.partitions", "2")) });
        using (var producer = new Confluent.Kafka.ProducerBuilder<Confluent.Kafka.Null, string>(new Confluent.Kafka.ProducerConfig { BootstrapServers = broker.Bootstrap, LingerMs = 0, Acks = Confluent.Kafka.Acks.All }).Build())
        {
            var sends = Enumerable.Range(0, 200).Select(i => producer.ProduceAsync("budget", new Confluent.Kafka.Message<Confluent.Kafka.Null, string> { Value = $"v{i}" }, TestContext.Current.CancellationToken));
            var results = await Task.WhenAll(sends);
            Assert.All(results, r => Assert.Equal(Confluent.Kafka.PersistenceStatus.Persisted, r.Status));
        }

        using var consumer = new Confluent.Kafka.ConsumerBuilder<Confluent.Kafka.Ignore, string>(new Confluent.Kafka.ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "g" }).Build();
        var total = Enumerable.Range(0, 2).Sum(p =>
        {
            var w = consumer.QueryWatermarkOffsets(new Confluent.Kafka.TopicPartition("budget", p), TimeSpan.FromSeconds(10));
            return w.High - w.Low;
        });
        Assert.Equal(200, total);
    }
}
