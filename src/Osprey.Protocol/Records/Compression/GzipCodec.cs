using System.Buffers;
using System.IO.Compression;

namespace Osprey.Protocol.Records.Compression;

internal static class GzipCodec
{
    public static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int level)
    {
        if (level is < -1 or > 9)
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, "The gzip level must be -1 (default) or 0-9.");
        }

        using var gzip = new GZipStream(
            new BufferWriterStream(destination), new ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: false);
        gzip.Write(source);
    }

    public static int Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxSize)
    {
        using var input = new RentedCopy(source);
        using var gzip = new GZipStream(input.OpenStream(), CompressionMode.Decompress);
        return RecordCompression.ReadCapped(
            gzip, destination, maxSize, CompressionType.Gzip, RecordCompression.GuessSize(source.Length));
    }
}
