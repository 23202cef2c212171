using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Osprey.Broker.Network;

/// <summary>
/// The memory Kestrel's socket transport reads into and sends from. Kestrel's own pool hands out 4 KB blocks, so a
/// producer sending 250 MB/s costs the broker 60,000 recv calls a second — a quarter of its CPU in syscall overhead
/// (perf, 1 KB records, acks=all). Kafka requests are large and arrive in bulk; with 64 KB blocks one recv takes what
/// the socket holds (up to a block), and a fetch response leaves in a few large sends.
/// Blocks are pinned arrays (the socket needs them pinned while the kernel writes into them). At most
/// <see cref="MaxRetained"/> free blocks are kept for reuse; others are left to the collector, so a burst does not
/// hold its memory forever. Rented blocks are bounded by the transport itself (Kestrel's read and write buffer
/// limits per connection). An idle connection holds no block (the transport waits for data before renting one);
/// a connection with unread bytes holds at least one, so 64 KB rather than 4 KB per such connection.
/// </summary>
public sealed class SocketBlockPool : MemoryPool<byte>
{
    public const int BlockSize = 64 * 1024;

    public const int MaxRetained = 256;

    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;
    private long _allocated;
    private bool _disposed;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks created since the pool was made (reused ones are not counted again).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    /// <summary>Free blocks held for reuse.</summary>
    public int Retained => Volatile.Read(ref _freeCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            block.Rent();
            return block;
        }

        Interlocked.Increment(ref _allocated);
        return new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _free.Clear();
        Volatile.Write(ref _freeCount, 0);
    }

    private void Return(Block block)
    {
        if (Volatile.Read(ref _disposed))
        {
            return;
        }

        if (Interlocked.Increment(ref _freeCount) > MaxRetained)
        {
            Interlocked.Decrement(ref _freeCount);
            return;
        }

        _free.Enqueue(block);
    }

    private sealed class Block(SocketBlockPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        // 1 while rented. Returning is an atomic 1 → 0, so a block disposed twice is still pooled once.
        private int _rented = 1;

        public Memory<byte> Memory
        {
            get
            {
                ObjectDisposedException.ThrowIf(Volatile.Read(ref _rented) == 0, this);
                return _array;
            }
        }

        public void Rent() => Volatile.Write(ref _rented, 1);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _rented, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}

/// <summary>Gives Kestrel's socket transport a <see cref="SocketBlockPool"/> for each pool it asks for.</summary>
public sealed class SocketBlockPoolFactory : IMemoryPoolFactory<byte>
{
    private readonly ConcurrentBag<SocketBlockPool> _created = [];

    /// <summary>The pools handed out so far.</summary>
    public IReadOnlyCollection<SocketBlockPool> Created => _created;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        var pool = new SocketBlockPool();
        _created.Add(pool);
        return pool;
    }
}
