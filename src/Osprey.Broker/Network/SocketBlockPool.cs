using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;

namespace Osprey.Broker.Network;

/// <summary>
/// The memory Kestrel's socket transport reads into and sends from. Kestrel's own pool hands out 4 KB blocks, so a
/// producer sending 250 MB/s costs the broker 60,000 recv calls a second — a quarter of its CPU in syscall overhead
/// (perf, 1 KB records, acks=all). Kafka requests are large and arrive in bulk; with 64 KB blocks one recv takes what
/// the socket holds (up to a block), and a fetch response leaves in a few large sends.
/// <para>
/// Blocks are native memory (mapped pages on Linux), not pinned arrays: a burst — thousands of connections closing at
/// once each take a block to read their end — once left the pinned-object heap with 130 MB of free but committed
/// space that the collector never compacts or returns. A native block that is not kept goes back to the system at
/// once. At most <see cref="MaxRetained"/> free blocks are kept for reuse, and <see cref="Trim"/> (called every few
/// seconds) releases those that sat unused for a whole period, so an idle broker shrinks back. Rented blocks are
/// bounded by the transport itself (Kestrel's read and write buffer limits per connection). An idle connection holds
/// no block (the transport waits for data before renting one).
/// </para>
/// </summary>
public sealed partial class SocketBlockPool : MemoryPool<byte>
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

    /// <summary>Blocks whose memory went back to the system.</summary>
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
    /// A block of native memory; its pages go back to the system when it is released. No finalizer: a span of the
    /// block does not keep it reachable, so a finalizer could free memory in use. Kestrel's pipes return every block.
    /// </summary>
    private sealed unsafe class Block : MemoryManager<byte>
    {
        private readonly SocketBlockPool _pool;
        private byte* _memory;

        // 1 while rented. Returning is an atomic 1 → 0, so a block disposed twice is still pooled once.
        private int _rented = 1;

        public Block(SocketBlockPool pool)
        {
            _pool = pool;
            _memory = NativeBlocks.Allocate(BlockSize);
        }

        public override Memory<byte> Memory
        {
            get
            {
                ObjectDisposedException.ThrowIf(Volatile.Read(ref _rented) == 0, this);
                return CreateMemory(BlockSize);
            }
        }

        public void Rent() => Volatile.Write(ref _rented, 1);

        public override Span<byte> GetSpan()
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _rented) == 0, this);
            return new Span<byte>(_memory, BlockSize);
        }

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _rented) == 0, this);
            ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)BlockSize);
            return new MemoryHandle(_memory + elementIndex); // native memory never moves
        }

        public override void Unpin()
        {
        }

        /// <summary>Gives the memory back to the system (a free block the pool does not keep).</summary>
        public void Release()
        {
            Free();
            Interlocked.Increment(ref _pool._released);
        }

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _rented, 0) == 1)
            {
                _pool.Return(this);
            }
        }

        private void Free()
        {
            var memory = _memory;
            _memory = null;
            if (memory is not null)
            {
                NativeBlocks.Free(memory, BlockSize);
            }
        }
    }

    /// <summary>
    /// Block memory: anonymous mappings on Linux (returned to the system by munmap, whatever else the process's
    /// allocator holds), the C runtime's allocator elsewhere.
    /// </summary>
    private static unsafe partial class NativeBlocks
    {
        private const int ProtRead = 1;
        private const int ProtWrite = 2;
        private const int MapPrivate = 2;
        private const int MapAnonymous = 0x20;

        public static byte* Allocate(int bytes)
        {
            if (!OperatingSystem.IsLinux())
            {
                return (byte*)NativeMemory.Alloc((nuint)bytes);
            }

            var memory = MMap(null, (nuint)bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if ((nint)memory == -1)
            {
                throw new OutOfMemoryException($"mmap of a {bytes}-byte socket block failed: errno {Marshal.GetLastPInvokeError()}");
            }

            return (byte*)memory;
        }

        public static void Free(byte* memory, int bytes)
        {
            if (!OperatingSystem.IsLinux())
            {
                NativeMemory.Free(memory);
                return;
            }

            _ = MUnmap(memory, (nuint)bytes);
        }

        [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
        private static partial void* MMap(void* address, nuint length, int protection, int flags, int fd, nint offset);

        [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
        private static partial int MUnmap(void* address, nuint length);
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

    private void OnTimer()
    {
        Trim();
        if (_connections.TakeMassDisconnect())
        {
            _collect();
        }
    }

    public void Dispose() => _trim.Dispose();
}
