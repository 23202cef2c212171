using System.Buffers;

namespace Osprey.Protocol.Records.Compression;

/// <summary>
/// A pooled copy of compressed input, for the codecs whose APIs read streams or memory rather than spans.
/// The copy is cheap next to the decompression itself.
/// </summary>
internal readonly struct RentedCopy : IDisposable
{
    private readonly byte[] _array;

    public RentedCopy(ReadOnlySpan<byte> source)
    {
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(source.Length, 1));
        source.CopyTo(_array);
        Length = source.Length;
    }

    public int Length { get; }

    public ReadOnlyMemory<byte> Memory => _array.AsMemory(0, Length);

    public MemoryStream OpenStream() => new(_array, 0, Length, writable: false);

    public void Dispose() => ArrayPool<byte>.Shared.Return(_array);
}
