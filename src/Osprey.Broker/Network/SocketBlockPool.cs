using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Osprey.Broker.Network;

/// <summary>
/// The memory Kestrel's socket transport reads into and sends from. Kestrel's own pool hands out 4 KB blocks, so a
/// producer sending 250 MB/s costs the broker 60,000 recv calls a second — a quarter of its CPU in syscall overhead
/// (perf, 1 KB records, acks=all). Kafka requests are large and arrive in bulk; with 64 KB blocks one recv takes what
/// the socket holds (up to a block), and a fetch response leaves in a few large sends.
/// <para>
/// Blocks are pinned arrays (Kestrel's socket sender needs arrays; native memory fails its sends). At most
/// <see cref="MaxRetained"/> free blocks are kept for reuse, and <see cref="Trim"/> (called every few seconds)
/// lets go of those that sat unused for a whole period, so that after a burst — thousands of connections closing at
/// once each take a block to read their end of stream — the pinned heap empties again and the collection that
/// follows a mass disconnect (<see cref="ConnectionTracker"/>) can give its memory back. Rented blocks are bounded by
/// the transport itself (Kestrel's read and write buffer limits per connection). An idle connection holds no block
/// (the transport waits for data before renting one).
/// </para>
/// </summary>
public sealed class SocketBlockPool : MemoryPool<byte>
{
    public const int BlockSize = 64 * 1024;

    public const int MaxRetained = 256;

    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;
    private int _fewestFreeSinceTrim;
    private long _allocated;
    private long _released;
    private bool _disposed;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks created since the pool was made (reused ones are not counted again).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    /// <summary>Free blocks let go of (not kept, or trimmed), for the collector to reclaim.</summary>
    public long Released => Interlocked.Read(ref _released);

    /// <summary>Free blocks held for reuse.</summary>
    public int Retained => Volatile.Read(ref _freeCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (_free.TryDequeue(out var block))
        {
            var left = Interlocked.Decrement(ref _freeCount);
            int fewest;
            while (left < (fewest = Volatile.Read(ref _fewestFreeSinceTrim)) && Interlocked.CompareExchange(ref _fewestFreeSinceTrim, left, fewest) != fewest)
            {
            }

            block.Rent();
            return block;
        }

        Interlocked.Increment(ref _allocated);
        return new Block(this);
    }

    /// <summary>
    /// Releases the free blocks that were not needed since the last call: as many as the free list never went below.
    /// Returns how many went.
    /// </summary>
    public int Trim()
    {
        var unused = Interlocked.Exchange(ref _fewestFreeSinceTrim, int.MaxValue);
        var released = 0;
        while (released < unused && _free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            block.Release();
            released++;
        }

        Volatile.Write(ref _fewestFreeSinceTrim, Retained);
        return released;
    }

    protected override void Dispose(bool disposing)
    {
        Volatile.Write(ref _disposed, true);
        while (_free.TryDequeue(out var block))
        {
            block.Release();
        }

        Volatile.Write(ref _freeCount, 0);
    }

    private void Return(Block block)
    {
        if (Volatile.Read(ref _disposed) || Interlocked.Increment(ref _freeCount) > MaxRetained)
        {
            if (!Volatile.Read(ref _disposed))
            {
                Interlocked.Decrement(ref _freeCount);
            }

            block.Release();
            return;
        }

        _free.Enqueue(block);
    }

    /// <summary>
    /// A block: a pinned array (the socket transport needs arrays it can hand to the kernel, and pinned ones so that
    /// the kernel may write into them while the collector runs). Released blocks are left to the collector.
    /// </summary>
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

        /// <summary>Lets the block go (a free block the pool does not keep): the collector reclaims it.</summary>
        public void Release() => Interlocked.Increment(ref pool._released);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _rented, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}

/// <summary>
/// Gives Kestrel's socket transport a <see cref="SocketBlockPool"/> for each pool it asks for, and trims them all on
/// a timer (<see cref="TrimInterval"/>); after a mass disconnect (<see cref="ConnectionTracker"/>) it also has the
/// collector reclaim the closed connections' memory and return it to the system, once.
/// </summary>
public sealed class SocketBlockPoolFactory : IMemoryPoolFactory<byte>, IDisposable
{
    /// <summary>How often free blocks that went unused are released.</summary>
    public static readonly TimeSpan TrimInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentBag<SocketBlockPool> _created = [];
    private readonly ITimer _trim;
    private readonly ConnectionTracker _connections;
    private readonly Action _collect;

    public SocketBlockPoolFactory(BrokerOptions options, ConnectionTracker connections)
        : this(options.Time, connections, () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true))
    {
    }

    /// <summary>With <paramref name="collect"/> standing in for the garbage collection (tests).</summary>
    internal SocketBlockPoolFactory(TimeProvider time, ConnectionTracker connections, Action collect)
    {
        _connections = connections;
        _collect = collect;
        _trim = time.CreateTimer(_ => OnTimer(), null, TrimInterval, TrimInterval);
    }

    /// <summary>The pools handed out so far.</summary>
    public IReadOnlyCollection<SocketBlockPool> Created => _created;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        var pool = new SocketBlockPool();
        _created.Add(pool);
        return pool;
    }

    /// <summary>Releases, in every pool, the free blocks that went unused since the last trim.</summary>
    public int Trim() => _created.Sum(pool => pool.Trim());

    /// <summary>Blocks let go of by one trim that make a collection worth its pause (4 MB).</summary>
    public const int CollectAfterReleasing = 64;

    private void OnTimer()
    {
        // A collection after a mass disconnect (the closed connections' objects), or once many blocks were let go of:
        // pinned blocks otherwise linger as garbage in the pinned heap until some later collection.
        var released = Trim();
        if (_connections.TakeMassDisconnect() | released >= CollectAfterReleasing)
        {
            _collect();
        }
    }

    public void Dispose() => _trim.Dispose();
}
