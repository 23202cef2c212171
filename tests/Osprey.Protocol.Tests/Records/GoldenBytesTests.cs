using Osprey.Protocol.Records;

namespace Osprey.Protocol.Tests.Records;

public class GoldenBytesTests
{
    [Fact]
    public void BuilderWritesTheSpecifiedBytes()
    {
        // Two records, laid out by hand from the format description.
        // Record 0: timestamp 1000, key "k", value "v", header ("h", "x").
        byte[] record0 =
        [
            0x18,             // length 12 (zigzag 24)
            0x00,             // attributes
            0x00,             // timestampDelta 0
            0x00,             // offsetDelta 0
            0x02, (byte)'k',  // key length 1, key
            0x02, (byte)'v',  // value length 1, value
            0x02,             // header count 1
            0x02, (byte)'h',  // header key length 1, key
            0x02, (byte)'x',  // header value length 1, value
        ];

        // Record 1: timestamp 1003, null key, value "vv", no headers.
        byte[] record1 =
        [
            0x10,             // length 8 (zigzag 16)
            0x00,             // attributes
            0x06,             // timestampDelta 3
            0x02,             // offsetDelta 1
            0x01,             // key length -1: null
            0x04, (byte)'v', (byte)'v', // value length 2, value
            0x00,             // header count 0
        ];

        byte[] expected =
        [
            0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset 0
            0, 0, 0, 71,                        // batchLength: 49 header bytes after it + 22 record bytes
            0xFF, 0xFF, 0xFF, 0xFF,             // partitionLeaderEpoch -1
            2,                                  // magic
            0, 0, 0, 0,                         // crc, filled in below
            0, 0,                               // attributes: uncompressed, CreateTime
            0, 0, 0, 1,                         // lastOffsetDelta 1
            0, 0, 0, 0, 0, 0, 0x03, 0xE8,       // baseTimestamp 1000
            0, 0, 0, 0, 0, 0, 0x03, 0xEB,       // maxTimestamp 1003
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // producerId -1
            0xFF, 0xFF,                         // producerEpoch -1
            0xFF, 0xFF, 0xFF, 0xFF,             // baseSequence -1
            0, 0, 0, 2,                         // recordCount 2
            .. record0,
            .. record1,
        ];
        var crc = RecordTestHelpers.ReferenceCrc32C(expected.AsSpan(21));
        expected[17] = (byte)(crc >> 24);
        expected[18] = (byte)(crc >> 16);
        expected[19] = (byte)(crc >> 8);
        expected[20] = (byte)crc;

        using var builder = new RecordBatchBuilder();
        builder.Append(1000, "k"u8.ToArray(), "v"u8.ToArray(), [new Header("h", "x"u8.ToArray())]);
        builder.Append(1003, null, "vv"u8.ToArray());

        Assert.Equal(expected, builder.ToArray());
    }
}
