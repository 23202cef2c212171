using System.Buffers;

namespace Osprey.Protocol.Records;

/// <summary>
/// A growable <see cref="IBufferWriter{T}"/> over arrays rented from <see cref="ArrayPool{T}.Shared"/>. Reuse one
/// (with <see cref="Clear"/>) for many batches to decompress or build without allocating; dispose it to return
/// the array. Spans handed out are invalidated by the next growth, <see cref="Clear"/> or <see cref="Dispose"/>.
/// </summary>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _written;

    public PooledBufferWriter(int initialCapacity = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initialCapacity);
        _buffer = initialCapacity == 0 ? [] : ArrayPool<byte>.Shared.Rent(initialCapacity);
    }

    public int WrittenCount => _written;

    public int Capacity => _buffer.Length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    /// <summary>The written bytes, writable: the batch builder patches its header in place.</summary>
    internal Span<byte> WrittenSpanForUpdate => _buffer.AsSpan(0, _written);

    internal Memory<byte> WrittenMemoryForUpdate => _buffer.AsMemory(0, _written);

    /// <summary>Forgets the written bytes but keeps the buffer.</summary>
    public void Clear() => _written = 0;

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _buffer.Length - _written);
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void EnsureCapacity(int sizeHint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        var needed = Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length - _written)
        {
            return;
        }

        var required = (long)_written + needed;
        if (required > Array.MaxLength)
        {
            throw new InvalidOperationException($"A buffer of {required} bytes exceeds the largest array .NET allows.");
        }

        var newSize = (int)Math.Min(Math.Max(required, Math.Max(256L, (long)_buffer.Length * 2)), Array.MaxLength);
        var newBuffer = ArrayPool<byte>.Shared.Rent(newSize);
        _buffer.AsSpan(0, _written).CopyTo(newBuffer);
        ReturnBuffer();
        _buffer = newBuffer;
    }

    private void ReturnBuffer()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }
    }

    public void Dispose()
    {
        ReturnBuffer();
        _buffer = [];
        _written = 0;
    }
}
