using System.Buffers;
using System.Buffers.Binary;
using ZstdNet;

namespace Osprey.Protocol.Records.Compression;

/// <summary>
/// Zstandard via ZstdNet's native libzstd. Decompression always streams, since Java clients write frames
/// without a content size and a batch may hold several frames; a declared content size is only checked early.
/// </summary>
internal static class ZstdCodec
{
    private const uint FrameMagic = 0xFD2FB528;

    // Compressors hold a native context; one per thread avoids recreating it for every batch.
    [ThreadStatic]
    private static Compressor? _compressor;

    [ThreadStatic]
    private static int _compressorLevel;

    public static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int level)
    {
        if (level < CompressionOptions.MinCompressionLevel || level > CompressionOptions.MaxCompressionLevel)
        {
            throw new ArgumentOutOfRangeException(
                nameof(level),
                level,
                $"The zstd level must be {CompressionOptions.MinCompressionLevel}-{CompressionOptions.MaxCompressionLevel}.");
        }

        var compressor = _compressor;
        if (compressor is null || _compressorLevel != level)
        {
            var options = compressor?.Options;
            compressor?.Dispose();
            options?.Dispose();
            compressor = new Compressor(new CompressionOptions(level));
            _compressor = compressor;
            _compressorLevel = level;
        }

        var span = destination.GetSpan(Compressor.GetCompressBound(source.Length));
        destination.Advance(compressor.Wrap(source, span));
    }

    public static int Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxSize)
    {
        var declared = TryReadContentSize(source);
        if (declared > (ulong)maxSize)
        {
            throw RecordCompression.TooLarge(CompressionType.Zstd, maxSize);
        }

        using var input = new RentedCopy(source);
        using var zstd = new DecompressionStream(input.OpenStream());
        return RecordCompression.ReadCapped(
            zstd, destination, maxSize, CompressionType.Zstd, (long?)declared ?? RecordCompression.GuessSize(source.Length));
    }

    /// <summary>
    /// The Frame_Content_Size of the first frame (RFC 8878, 3.1.1.1), or null when it is absent or the input does
    /// not start with a zstd frame header. Read directly: libzstd's query reports absence by throwing.
    /// </summary>
    internal static ulong? TryReadContentSize(ReadOnlySpan<byte> source)
    {
        if (source.Length < 5 || BinaryPrimitives.ReadUInt32LittleEndian(source) != FrameMagic)
        {
            return null;
        }

        var descriptor = source[4];
        var sizeFlag = descriptor >> 6;
        var singleSegment = (descriptor & 0x20) != 0;
        var dictionaryIdSize = (descriptor & 0x03) switch
        {
            0 => 0,
            1 => 1,
            2 => 2,
            _ => 4,
        };
        var sizeFieldSize = sizeFlag switch
        {
            0 => singleSegment ? 1 : 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        if (sizeFieldSize == 0)
        {
            return null;
        }

        var offset = 5 + (singleSegment ? 0 : 1) + dictionaryIdSize;
        if (source.Length < offset + sizeFieldSize)
        {
            return null;
        }

        var field = source.Slice(offset, sizeFieldSize);
        return sizeFieldSize switch
        {
            1 => field[0],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(field) + 256UL,
            4 => BinaryPrimitives.ReadUInt32LittleEndian(field),
            _ => BinaryPrimitives.ReadUInt64LittleEndian(field),
        };
    }
}
