using System.Buffers;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;

namespace Osprey.Protocol.Records.Compression;

/// <summary>
/// LZ4 in the standard frame format. Frames are written the way Kafka's Java client writes them: 64 KiB
/// independent blocks (its reader refuses dependent ones), no block or content checksums.
/// </summary>
internal static class Lz4Codec
{
    public const int MinLevel = 1;
    public const int MaxLevel = 17;

    public static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int level)
    {
        if (level is < MinLevel or > MaxLevel)
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, $"The lz4 level must be {MinLevel}-{MaxLevel}.");
        }

        var settings = new LZ4EncoderSettings
        {
            CompressionLevel = ToLz4Level(level),
            BlockSize = 64 * 1024,
            ChainBlocks = false,
            BlockChecksum = false,
            ContentChecksum = false,
        };
        _ = LZ4Frame.Encode(source, destination, settings);
    }

    /// <summary>
    /// Kafka compresses with the fast compressor at its default level and with HC at any other; HC levels above
    /// 12 compress like 12 and levels 1-2 like 3.
    /// </summary>
    private static LZ4Level ToLz4Level(int level) => level switch
    {
        RecordCompression.Lz4DefaultLevel => LZ4Level.L00_FAST,
        < 3 => LZ4Level.L03_HC,
        > 12 => LZ4Level.L12_MAX,
        _ => (LZ4Level)level,
    };

    public static int Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxSize)
    {
        using var input = new RentedCopy(source);
        using var reader = LZ4Frame.Decode(input.Memory);
        var declared = reader.GetFrameLength();
        if (declared > maxSize)
        {
            throw RecordCompression.TooLarge(CompressionType.Lz4, maxSize);
        }

        using var stream = reader.AsStream();
        return RecordCompression.ReadCapped(
            stream, destination, maxSize, CompressionType.Lz4, declared ?? RecordCompression.GuessSize(source.Length));
    }
}
