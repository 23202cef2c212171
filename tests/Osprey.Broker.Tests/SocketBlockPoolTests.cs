using Confluent.Kafka;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Network;

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
    }
}
