using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4.Streams;
using Osprey.Protocol.Records;
using Osprey.Protocol.Records.Compression;
using ZstdNet;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

public class CompressionTests
{
    // Raw snappy blocks made by hand from the format: a varint uncompressed length, then elements.
    // "abcabcabc": literal "abc" (tag (3-1)<<2), then a copy of 6 bytes at offset 3 (tag ((6-4)<<2)|1, offset byte).
    private static readonly byte[] AbcBlock = [0x09, 0x08, (byte)'a', (byte)'b', (byte)'c', 0x09, 0x03];

    // "hello": one literal of 5 bytes (tag (5-1)<<2).
    private static readonly byte[] HelloBlock = [0x05, 0x10, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o'];

    private static readonly byte[] XerialHeader = [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0x00, 0, 0, 0, 1, 0, 0, 0, 1];

    private static byte[] Decompress(CompressionType type, ReadOnlySpan<byte> source, int max = 1 << 26)
    {
        using var output = new PooledBufferWriter();
        var written = RecordCompression.Decompress(type, source, output, max);
        Assert.Equal(output.WrittenCount, written);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Compress(CompressionType type, ReadOnlySpan<byte> source, int? level = null)
    {
        using var output = new PooledBufferWriter();
        RecordCompression.Compress(type, source, output, level);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Sample(int length)
    {
        var data = new byte[length];
        var random = new Random(length);
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(i % 97 < 40 ? random.Next(256) : 'a' + (i % 26));
        }

        return data;
    }

    [Fact]
    public void SnappyDecodesARawBlock() =>
        Assert.Equal(Utf8("abcabcabc"), Decompress(CompressionType.Snappy, AbcBlock));

    [Fact]
    public void SnappyDecodesAHandBuiltXerialFrame()
    {
        byte[] frame = [.. XerialHeader, 0, 0, 0, (byte)AbcBlock.Length, .. AbcBlock, 0, 0, 0, (byte)HelloBlock.Length, .. HelloBlock];
        Assert.Equal(Utf8("abcabcabchello"), Decompress(CompressionType.Snappy, frame));
    }

    [Fact]
    public void SnappyXerialFrameWithNoBlocksIsEmpty() => Assert.Empty(Decompress(CompressionType.Snappy, XerialHeader));

    [Fact]
    public void SnappyWritesXerialFramingInThirtyTwoKibBlocks()
    {
        var data = Sample(100_000);
        var compressed = Compress(CompressionType.Snappy, data);
        Assert.Equal(XerialHeader, compressed[..16]);

        var blocks = new List<int>();
        var position = 16;
        while (position < compressed.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(compressed.AsSpan(position));
            var block = compressed.AsSpan(position + 4, length);
            blocks.Add(Snappier.Snappy.GetUncompressedLength(block));
            position += 4 + length;
        }

        Assert.Equal(compressed.Length, position);
        Assert.Equal([32768, 32768, 32768, 100_000 - (3 * 32768)], blocks);
        Assert.Equal(data, Decompress(CompressionType.Snappy, compressed));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 8 })]           // longer than what remains
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xF9 })] // negative
    [InlineData(new byte[] { 0, 0 })]                 // cut-off length
    public void SnappyXerialBlockLengthsAreChecked(byte[] blockPrefix)
    {
        byte[] frame = [.. XerialHeader, .. blockPrefix, .. AbcBlock[..Math.Min(AbcBlock.Length, blockPrefix.Length == 4 ? 7 : 0)]];
        AssertCorrupt(() => Decompress(CompressionType.Snappy, frame));
    }

    [Fact]
    public void SnappyXerialHeaderCutShortIsCorrupt() =>
        AssertCorrupt(() => Decompress(CompressionType.Snappy, XerialHeader.AsSpan(0, 10)));

    [Fact]
    public void SnappyBlockDeclaringMoreThanTheCapIsRefusedBeforeDecoding()
    {
        byte[] block = [0x80, 0x80, 0x80, 0x04, 0x00]; // declares 8 MiB
        var e = AssertCorrupt(() => Decompress(CompressionType.Snappy, block, max: 1024));
        Assert.Contains("limit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lz4WritesFramesJavaClientsCanRead()
    {
        var compressed = Compress(CompressionType.Lz4, Sample(200_000));
        Assert.Equal(new byte[] { 0x04, 0x22, 0x4D, 0x18 }, compressed[..4]);
        Assert.Equal(0x60, compressed[4]); // FLG: version 01, independent blocks, no checksums, no content size
        Assert.Equal(0x40, compressed[5]); // BD: 64 KiB blocks
    }

    [Fact]
    public void Lz4ReadsFramesWithDependentBlocksAndChecksums()
    {
        var data = Sample(150_000);
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        LZ4Frame.Encode(data.AsSpan(), writer, new LZ4EncoderSettings
        {
            ChainBlocks = true,
            BlockChecksum = true,
            ContentChecksum = true,
            BlockSize = 256 * 1024,
        });
        Assert.Equal(data, Decompress(CompressionType.Lz4, writer.WrittenSpan));
    }

    /// <summary>
    /// Re-heads a frame we wrote (FLG 0x60, BD, HC) with the content-size flag and an 8-byte size; K4os cannot
    /// write that field itself. HC is the second byte of XXH32 over the descriptor.
    /// </summary>
    private static byte[] WithDeclaredContentSize(byte[] frame, ulong contentSize)
    {
        byte[] descriptor = [0x68, frame[5], .. BitConverter.GetBytes(contentSize)];
        var hc = (byte)(K4os.Hash.xxHash.XXH32.DigestOf(descriptor) >> 8);
        return [.. frame[..4], .. descriptor, hc, .. frame[7..]];
    }

    [Fact]
    public void Lz4ReadsFramesThatDeclareTheirContentSize()
    {
        var data = Sample(10_000);
        var frame = WithDeclaredContentSize(Compress(CompressionType.Lz4, data), (ulong)data.Length);
        Assert.Equal(data, Decompress(CompressionType.Lz4, frame));
    }

    [Fact]
    public void Lz4DeclaredContentSizeOverTheCapIsRefused()
    {
        var frame = WithDeclaredContentSize(Compress(CompressionType.Lz4, Sample(10_000)), 1UL << 40);
        var e = AssertCorrupt(() => Decompress(CompressionType.Lz4, frame, max: 1 << 20));
        Assert.Contains("limit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GzipWritesGzipAndReadsConcatenatedMembers()
    {
        var first = Compress(CompressionType.Gzip, Utf8("first "));
        var second = Compress(CompressionType.Gzip, Utf8("second"));
        Assert.Equal(new byte[] { 0x1F, 0x8B, 0x08 }, first[..3]);
        Assert.Equal(Utf8("first second"), Decompress(CompressionType.Gzip, [.. first, .. second]));
    }

    [Fact]
    public void GzipReadsWhatDotNetZlibWrites()
    {
        var data = Sample(50_000);
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(data);
        }

        Assert.Equal(data, Decompress(CompressionType.Gzip, memory.ToArray()));
    }

    [Fact]
    public void ZstdDeclaresContentSizeWhenCompressingInOneShot()
    {
        var data = Sample(70_000);
        var compressed = Compress(CompressionType.Zstd, data);
        Assert.Equal((ulong)data.Length, ZstdCodec.TryReadContentSize(compressed));
        Assert.Equal(data, Decompress(CompressionType.Zstd, compressed));
    }

    [Fact]
    public void ZstdReadsStreamedFramesWithoutContentSize()
    {
        // What Java clients send: a streaming frame whose header omits the content size.
        var data = Sample(300_000);
        using var memory = new MemoryStream();
        using (var zstd = new CompressionStream(memory, new CompressionOptions(3)))
        {
            zstd.Write(data);
        }

        var compressed = memory.ToArray();
        Assert.Null(ZstdCodec.TryReadContentSize(compressed));
        Assert.Equal(data, Decompress(CompressionType.Zstd, compressed));
    }

    [Fact]
    public void ZstdReadsConcatenatedFrames()
    {
        var a = Compress(CompressionType.Zstd, Utf8("one "));
        var b = Compress(CompressionType.Zstd, Utf8("two"));
        Assert.Equal(Utf8("one two"), Decompress(CompressionType.Zstd, [.. a, .. b]));
    }

    [Fact]
    public void ZstdDeclaredContentSizeOverTheCapIsRefusedBeforeDecoding()
    {
        // Magic, descriptor 0xE0 (8-byte content size, single segment), content size 2^40, then junk.
        byte[] frame = [0x28, 0xB5, 0x2F, 0xFD, 0xE0, 0, 0, 0, 0, 0, 1, 0, 0, 0xDE, 0xAD];
        Assert.Equal(1UL << 40, ZstdCodec.TryReadContentSize(frame));
        var e = AssertCorrupt(() => Decompress(CompressionType.Zstd, frame, max: 1 << 20));
        Assert.Contains("limit", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x05 }, 5UL)]           // single segment, 1-byte size
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F, 0xFD, 0x40, 0x00, 0x10, 0x00 }, 272UL)] // window byte, 2-byte size + 256
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00 }, null)]          // no size field
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F, 0xFD, 0x80, 0x00, 0x01 }, null)]    // size field cut off
    [InlineData(new byte[] { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05 }, null)]          // not zstd
    public void ZstdContentSizeIsReadFromTheFrameHeader(byte[] frame, ulong? expected) =>
        Assert.Equal(expected, ZstdCodec.TryReadContentSize(frame));

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void EmptyInputRoundTrips(CompressionType type) =>
        Assert.Empty(Decompress(type, Compress(type, [])));

    [Theory]
    [InlineData(CompressionType.Gzip, -2)]
    [InlineData(CompressionType.Gzip, 10)]
    [InlineData(CompressionType.Lz4, 0)]
    [InlineData(CompressionType.Lz4, 18)]
    [InlineData(CompressionType.Zstd, 23)]
    public void OutOfRangeLevelsAreRefused(CompressionType type, int level) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Compress(type, [1, 2, 3], level));

    [Fact]
    public void DefaultLevelsAreKafkas()
    {
        Assert.Equal(-1, RecordCompression.DefaultLevel(CompressionType.Gzip));
        Assert.Equal(9, RecordCompression.DefaultLevel(CompressionType.Lz4));
        Assert.Equal(3, RecordCompression.DefaultLevel(CompressionType.Zstd));
    }
}
