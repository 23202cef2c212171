using System.Buffers;
using System.Buffers.Binary;
using Snappier;

namespace Osprey.Protocol.Records.Compression;

/// <summary>
/// Snappy as Kafka clients write it: the xerial (snappy-java) framing, a 16-byte header then blocks of
/// [int32 big-endian compressed length][raw snappy block]. Decompression also accepts one raw snappy block, which
/// some non-Java clients send.
/// </summary>
internal static class SnappyCodec
{
    /// <summary>Uncompressed bytes per block, as snappy-java writes them.</summary>
    public const int BlockSize = 32 * 1024;

    public const int XerialHeaderSize = 16;

    // 0x82 "SNAPPY" 0x00, then version 1 and minimum compatible version 1 (int32 big-endian).
    private static ReadOnlySpan<byte> XerialHeader => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];

    private static ReadOnlySpan<byte> XerialMagic => XerialHeader[..8];

    public static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        XerialHeader.CopyTo(destination.GetSpan(XerialHeaderSize));
        destination.Advance(XerialHeaderSize);

        while (!source.IsEmpty)
        {
            var chunk = source[..Math.Min(BlockSize, source.Length)];
            source = source[chunk.Length..];
            var span = destination.GetSpan(4 + Snappy.GetMaxCompressedLength(chunk.Length));
            var length = Snappy.Compress(chunk, span[4..]);
            BinaryPrimitives.WriteInt32BigEndian(span, length);
            destination.Advance(4 + length);
        }
    }

    public static int Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxSize)
    {
        if (!source.StartsWith(XerialMagic))
        {
            return DecompressBlock(source, destination, 0, maxSize);
        }

        if (source.Length < XerialHeaderSize)
        {
            throw Corrupt($"the xerial snappy header needs {XerialHeaderSize} bytes but only {source.Length} are present");
        }

        var total = 0;
        var position = XerialHeaderSize;
        while (position < source.Length)
        {
            if (source.Length - position < 4)
            {
                throw Corrupt($"a xerial block length at position {position} is cut off");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(source[position..]);
            position += 4;
            if (length < 0 || length > source.Length - position)
            {
                throw Corrupt($"a xerial block at position {position} declares {length} bytes but {source.Length - position} remain");
            }

            total += DecompressBlock(source.Slice(position, length), destination, total, maxSize);
            position += length;
        }

        return total;
    }

    private static int DecompressBlock(ReadOnlySpan<byte> block, IBufferWriter<byte> destination, int alreadyWritten, int maxSize)
    {
        // The block starts with its uncompressed length: check it before allocating anything.
        var length = Snappy.GetUncompressedLength(block);
        if (length > maxSize - alreadyWritten)
        {
            throw RecordCompression.TooLarge(CompressionType.Snappy, maxSize);
        }

        var written = Snappy.Decompress(block, destination.GetSpan(length)[..length]);
        if (written != length)
        {
            throw Corrupt($"a block declared {length} uncompressed bytes but produced {written}");
        }

        destination.Advance(length);
        return length;
    }

    private static KafkaProtocolException Corrupt(string detail) =>
        new(ErrorCode.CorruptMessage, $"The Snappy compressed records are corrupt: {detail}.");
}
