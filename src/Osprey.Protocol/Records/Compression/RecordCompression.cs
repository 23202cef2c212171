using System.Buffers;
using ZstdNet;

namespace Osprey.Protocol.Records.Compression;

/// <summary>
/// Compresses and decompresses the records section of a batch with the codec its attributes name, producing the
/// bytes Kafka clients write and accepting what they send. Every decompression is capped: output beyond
/// <c>maxDecompressedSize</c> is refused as CORRUPT_MESSAGE before it is buffered, so a small batch cannot make
/// the broker allocate without bound.
/// </summary>
public static class RecordCompression
{
    /// <summary>The default cap on one batch's decompressed records (64 MiB).</summary>
    public const int DefaultMaxDecompressedSize = 64 * 1024 * 1024;

    /// <summary>Kafka's compression.gzip.level default: zlib's default (6).</summary>
    public const int GzipDefaultLevel = -1;

    /// <summary>Kafka's compression.lz4.level default. Kafka uses the fast compressor at this level, HC otherwise.</summary>
    public const int Lz4DefaultLevel = 9;

    /// <summary>Kafka's compression.zstd.level default.</summary>
    public const int ZstdDefaultLevel = 3;

    public static int DefaultLevel(CompressionType type) => type switch
    {
        CompressionType.Gzip => GzipDefaultLevel,
        CompressionType.Lz4 => Lz4DefaultLevel,
        CompressionType.Zstd => ZstdDefaultLevel,
        _ => 0,
    };

    /// <summary>
    /// Compresses <paramref name="source"/> into <paramref name="destination"/>. <paramref name="level"/> is the
    /// codec's level as Kafka configures it (gzip -1 or 1-9, lz4 1-17, zstd as libzstd); null is Kafka's default.
    /// Snappy has no levels.
    /// </summary>
    public static void Compress(CompressionType type, ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int? level = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        switch (type)
        {
            case CompressionType.None:
                source.CopyTo(destination.GetSpan(source.Length));
                destination.Advance(source.Length);
                break;
            case CompressionType.Gzip:
                GzipCodec.Compress(source, destination, level ?? GzipDefaultLevel);
                break;
            case CompressionType.Snappy:
                SnappyCodec.Compress(source, destination);
                break;
            case CompressionType.Lz4:
                Lz4Codec.Compress(source, destination, level ?? Lz4DefaultLevel);
                break;
            case CompressionType.Zstd:
                ZstdCodec.Compress(source, destination, level ?? ZstdDefaultLevel);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown compression type.");
        }
    }

    /// <summary>
    /// Decompresses <paramref name="source"/> into <paramref name="destination"/> and returns the number of bytes
    /// written. Malformed input, or output beyond <paramref name="maxDecompressedSize"/>, is CORRUPT_MESSAGE.
    /// </summary>
    public static int Decompress(
        CompressionType type,
        ReadOnlySpan<byte> source,
        IBufferWriter<byte> destination,
        int maxDecompressedSize = DefaultMaxDecompressedSize)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(maxDecompressedSize);
        try
        {
            return type switch
            {
                CompressionType.None => CopyCapped(source, destination, maxDecompressedSize),
                CompressionType.Gzip => GzipCodec.Decompress(source, destination, maxDecompressedSize),
                CompressionType.Snappy => SnappyCodec.Decompress(source, destination, maxDecompressedSize),
                CompressionType.Lz4 => Lz4Codec.Decompress(source, destination, maxDecompressedSize),
                CompressionType.Zstd => ZstdCodec.Decompress(source, destination, maxDecompressedSize),
                _ => throw new KafkaProtocolException(ErrorCode.CorruptMessage, $"Unknown compression codec id {(int)type}."),
            };
        }
        catch (Exception e) when (IsCodecFailure(e))
        {
            throw new KafkaProtocolException(
                ErrorCode.CorruptMessage, $"The {type} compressed records are corrupt: {e.Message}", e);
        }
    }

    /// <summary>
    /// What the codec libraries throw for malformed input (found by the fuzz tests). They differ: K4os reports
    /// some corruption as an invalid state, and frame features it lacks (LZ4 dictionary ids) as not implemented.
    /// Argument and index errors are left alone: they would be bugs here, not bad data.
    /// </summary>
    private static bool IsCodecFailure(Exception e) =>
        e is InvalidDataException or IOException or ZstdException or InvalidOperationException or NotImplementedException;

    private static int CopyCapped(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxSize)
    {
        if (source.Length > maxSize)
        {
            throw TooLarge(CompressionType.None, maxSize);
        }

        source.CopyTo(destination.GetSpan(source.Length));
        destination.Advance(source.Length);
        return source.Length;
    }

    internal static KafkaProtocolException TooLarge(CompressionType type, int maxSize) =>
        new(
            ErrorCode.CorruptMessage,
            $"The {type} compressed records decompress to more than the {maxSize}-byte limit; refusing a possible decompression bomb.");

    /// <summary>
    /// Copies a decompressing stream into <paramref name="destination"/>, never asking for more than one byte past
    /// <paramref name="maxSize"/> so an oversized stream is detected without buffering it.
    /// <paramref name="expectedSize"/> (a declared size, or a guess) only sizes the buffer requests.
    /// </summary>
    internal static int ReadCapped(Stream source, IBufferWriter<byte> destination, int maxSize, CompressionType type, long expectedSize)
    {
        const int MinChunk = 16 * 1024;
        var total = 0;
        while (true)
        {
            var allowed = (int)Math.Min((long)maxSize - total + 1, int.MaxValue);
            var request = (int)Math.Min(Math.Max(expectedSize - total, MinChunk), allowed);
            var span = destination.GetSpan(request);
            if (span.Length > allowed)
            {
                span = span[..allowed];
            }

            var read = source.Read(span);
            if (read == 0)
            {
                return total;
            }

            total += read;
            if (total > maxSize)
            {
                throw TooLarge(type, maxSize);
            }

            destination.Advance(read);
        }
    }

    /// <summary>A first guess at the decompressed size when the format does not declare it.</summary>
    internal static long GuessSize(int compressedLength) => compressedLength * 4L;
}
