using Confluent.Kafka;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Network;
using Osprey.Storage.Tests;

namespace Osprey.Broker.Tests;

public class SocketBlockPoolTests
{
    [Fact]
    public void BlocksAreLargeAndAReturnedBlockIsRentedAgain()
    {
        using var pool = new SocketBlockPool();
        var first = pool.Rent();
        Assert.Equal(SocketBlockPool.BlockSize, first.Memory.Length);
        first.Memory.Span[0] = 42;
        first.Dispose();
        Assert.Equal(1, pool.Retained);
        Assert.Throws<ObjectDisposedException>(() => first.Memory);

        using var second = pool.Rent(4096);
        Assert.Equal(42, second.Memory.Span[0]);
        Assert.Equal(1, pool.Allocated);
        Assert.Equal(0, pool.Retained);
    }

    [Fact]
    public void FreeBlocksKeptForReuseAreCapped()
    {
        using var pool = new SocketBlockPool();
        var blocks = Enumerable.Range(0, SocketBlockPool.MaxRetained + 10).Select(_ => pool.Rent()).ToList();
        foreach (var block in blocks)
        {
            block.Dispose();
            block.Dispose();
        }

        Assert.Equal(SocketBlockPool.MaxRetained, pool.Retained);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(SocketBlockPool.BlockSize + 1));
    }

    [Fact]
    public void ABlockDisposedTwiceAtOnceIsPooledOnce()
    {
        using var pool = new SocketBlockPool();
        var blocks = Enumerable.Range(0, 100).Select(_ => pool.Rent()).ToList();
        Parallel.ForEach(blocks.Concat(blocks), block => block.Dispose());
        Assert.Equal(100, pool.Retained);

        var again = Enumerable.Range(0, 101).Select(_ => pool.Rent()).ToList();
        Assert.Equal(101, again.Distinct().Count());
        Assert.Equal(101, pool.Allocated);
    }

    [Fact]
    public void FreeBlocksThatSatUnusedForAWholePeriodGoBackToTheSystem()
    {
        using var pool = new SocketBlockPool();
        var burst = Enumerable.Range(0, 100).Select(_ => pool.Rent()).ToList();
        burst.ForEach(block => block.Dispose());
        Assert.Equal(100, pool.Retained);

        // In the period the burst happened, the free list was empty at times: nothing was unused all along.
        Assert.Equal(0, pool.Trim());

        // Ten blocks in use during the next period: ninety sat free all the time and go.
        var steady = Enumerable.Range(0, 10).Select(_ => pool.Rent()).ToList();
        steady.ForEach(block => block.Dispose());
        Assert.Equal(90, pool.Trim());
        Assert.Equal(10, pool.Retained);
        Assert.Equal(90, pool.Released);

        // A quiet period: the rest go too, and renting afterwards makes new blocks.
        Assert.Equal(10, pool.Trim());
        Assert.Equal(0, pool.Retained);
        using var fresh = pool.Rent();
        fresh.Memory.Span.Fill(7);
        Assert.Equal(101, pool.Allocated);
    }

    [Fact]
    public void BlocksBeyondWhatThePoolKeepsAreReleasedAtOnce()
    {
        var pool = new SocketBlockPool();
        var blocks = Enumerable.Range(0, SocketBlockPool.MaxRetained + 5).Select(_ => pool.Rent()).ToList();
        blocks.ForEach(block => block.Dispose());
        Assert.Equal(5, pool.Released);

        // A block given back after the pool is disposed is released, not kept.
        var late = pool.Rent(); // one of the kept ones
        pool.Dispose();
        Assert.Equal(SocketBlockPool.MaxRetained + 4, pool.Released);
        late.Dispose();
        Assert.Equal(SocketBlockPool.MaxRetained + 5, pool.Released);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
    }

    [Fact]
    public void TheTimerTrimsThePoolsAndCollectsOnceAfterAMassDisconnect()
    {
        var time = new ManualTimeProvider();
        var connections = new ConnectionTracker();
        var collections = 0;
        using var factory = new SocketBlockPoolFactory(time, connections, () => collections++);
        using var pool = (SocketBlockPool)factory.Create();
        pool.Rent().Dispose();

        for (var i = 0; i < 3000; i++)
        {
            connections.Opened();
        }

        time.Advance((long)SocketBlockPoolFactory.TrimInterval.TotalMilliseconds);
        Assert.Equal(0, collections);
        Assert.Equal(0, pool.Released); // rented in this period

        // 999 closed: not a mass disconnect.
        for (var i = 0; i < 999; i++)
        {
            connections.Closed();
        }

        time.Advance((long)SocketBlockPoolFactory.TrimInterval.TotalMilliseconds);
        Assert.Equal(0, collections);
        Assert.Equal(1, pool.Released); // unused for a whole period

        // The rest close: from a peak of 2,001 down to 0.
        for (var i = 0; i < 2001; i++)
        {
            connections.Closed();
        }

        time.Advance((long)SocketBlockPoolFactory.TrimInterval.TotalMilliseconds);
        Assert.Equal(1, collections);
        Assert.Equal(0, connections.Open);

        // Once: the next quiet period does not collect again.
        time.Advance((long)SocketBlockPoolFactory.TrimInterval.TotalMilliseconds);
        Assert.Equal(1, collections);

        // Many blocks let go of by one trim: a collection too, so the pinned heap empties.
        var burst = Enumerable.Range(0, SocketBlockPoolFactory.CollectAfterReleasing).Select(_ => pool.Rent()).ToList();
        burst.ForEach(block => block.Dispose());
        time.Advance((long)SocketBlockPoolFactory.TrimInterval.TotalMilliseconds); // the burst's period: nothing unused all along
        Assert.Equal(1, collections);
        time.Advance((long)SocketBlockPoolFactory.TrimInterval.TotalMilliseconds);
        Assert.Equal(2, collections);
        Assert.Equal(0, pool.Retained);
    }

    [Fact]
    public void ManyConnectionsThatComeAndGoInAPeriodAreNoMassDisconnect()
    {
        var connections = new ConnectionTracker();
        for (var i = 0; i < 5000; i++)
        {
            connections.Opened();
            connections.Closed();
        }

        Assert.False(connections.TakeMassDisconnect());
        for (var i = 0; i < 4000; i++)
        {
            connections.Opened();
        }

        for (var i = 0; i < 1500; i++)
        {
            connections.Closed();
        }

        Assert.False(connections.TakeMassDisconnect()); // 2,500 of 4,000 still open
        for (var i = 0; i < 2500; i++)
        {
            connections.Closed();
        }

        Assert.True(connections.TakeMassDisconnect());
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheBrokerCountsItsConnections()
    {
        await using var broker = await TestBroker.StartAsync();
        var connections = broker.Server.Services.GetRequiredService<ConnectionTracker>();
        Assert.Equal(0, connections.Open);
        using (var client = new System.Net.Sockets.TcpClient())
        {
            await client.ConnectAsync("127.0.0.1", broker.Server.Port, TestContext.Current.CancellationToken);
            await TestWait.UntilAsync(() => connections.Open == 1);
        }

        await TestWait.UntilAsync(() => connections.Open == 0);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheBrokersSocketsReceiveIntoTheLargeBlocks()
    {
        await using var broker = await TestBroker.StartAsync();
        var factory = Assert.IsType<SocketBlockPoolFactory>(broker.Server.Services.GetRequiredService<IMemoryPoolFactory<byte>>());
        var value = new byte[600_000];
        Random.Shared.NextBytes(value);
        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = broker.Bootstrap, Acks = Acks.All }).Build())
        {
            await producer.ProduceAsync("big", new Message<Null, byte[]> { Value = value }, TestContext.Current.CancellationToken);
        }

        // The whole frame is held in the pipe until it is complete: 600 KB needs at least that many 64 KB blocks.
        Assert.True(factory.Created.Sum(p => p.Allocated) >= value.Length / SocketBlockPool.BlockSize, $"{factory.Created.Sum(p => p.Allocated)} blocks");

        // And the answer leaves from many blocks at once (a send of several segments: Kestrel needs them to be arrays).
        using var consumer = new ConsumerBuilder<Null, byte[]>(new ConsumerConfig { BootstrapServers = broker.Bootstrap, GroupId = "unused", EnableAutoCommit = false, FetchMaxBytes = 2_000_000 }).Build();
        consumer.Assign(new TopicPartitionOffset("big", 0, Offset.Beginning));
        var consumed = consumer.Consume(TimeSpan.FromSeconds(30));
        Assert.NotNull(consumed);
        Assert.Equal(value, consumed.Message.Value);
    }
}
