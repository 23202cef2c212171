using System.Buffers.Binary;
using System.Text;
using Osprey.Protocol.Records;

namespace Osprey.Protocol.Tests.Records;

/// <summary>A record as the tests write it.</summary>
internal sealed record TestRecord(long Timestamp, byte[]? Key, byte[]? Value, Header[] Headers)
{
    public TestRecord(long timestamp, string? key, string? value, params Header[] headers)
        : this(timestamp, key is null ? null : Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value), headers)
    {
    }
}

/// <summary>A record as the tests read it back, copied out of the span views.</summary>
internal sealed record ReadRecord(long Offset, long Timestamp, int OffsetDelta, byte[]? Key, byte[]? Value, List<(string Key, byte[]? Value)> Headers);

internal static class RecordTestHelpers
{
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static byte[] Build(IEnumerable<TestRecord> records, CompressionType compression = CompressionType.None, Action<RecordBatchBuilder>? configure = null)
    {
        using var builder = new RecordBatchBuilder(compression);
        configure?.Invoke(builder);
        foreach (var record in records)
        {
            builder.Append(record.Timestamp, record.Key, record.Value, record.Headers);
        }

        return builder.ToArray();
    }

    public static List<ReadRecord> ReadAll(ReadOnlySpan<byte> batchBytes, int maxDecompressedSize = 64 * 1024 * 1024)
    {
        using var buffer = new PooledBufferWriter();
        var batch = RecordBatch.Parse(batchBytes);
        var result = new List<ReadRecord>();
        foreach (var record in batch.GetRecords(buffer, maxDecompressedSize))
        {
            var headers = new List<(string, byte[]?)>();
            foreach (var header in record.Headers)
            {
                headers.Add((header.GetKeyString(), header.IsValueNull ? null : header.Value.ToArray()));
            }

            result.Add(new ReadRecord(
                record.Offset,
                record.Timestamp,
                record.OffsetDelta,
                record.IsKeyNull ? null : record.Key.ToArray(),
                record.IsValueNull ? null : record.Value.ToArray(),
                headers));
        }

        return result;
    }

    /// <summary>A batch around a hand-made records section, with a correct length and CRC.</summary>
    public static byte[] WrapRecords(ReadOnlySpan<byte> recordsSection, int recordCount, CompressionType compression = CompressionType.None, long baseOffset = 0)
    {
        var bytes = new byte[RecordBatchHeader.Size + recordsSection.Length];
        new RecordBatchHeader
        {
            BaseOffset = baseOffset,
            BatchLength = bytes.Length - RecordBatchHeader.LogOverhead,
            PartitionLeaderEpoch = -1,
            Attributes = RecordBatchHeader.ComposeAttributes(compression),
            LastOffsetDelta = Math.Max(recordCount - 1, 0),
            BaseTimestamp = 1000,
            MaxTimestamp = 1000,
            ProducerId = -1,
            ProducerEpoch = -1,
            BaseSequence = -1,
            RecordCount = recordCount,
        }.WriteTo(bytes);
        recordsSection.CopyTo(bytes.AsSpan(RecordBatchHeader.Size));
        RecordBatch.UpdateCrc(bytes);
        return bytes;
    }

    /// <summary>Zigzag varint encoding, written independently of the production code.</summary>
    public static byte[] VarInt(long value)
    {
        var raw = (ulong)((value << 1) ^ (value >> 63));
        var bytes = new List<byte>();
        while (raw >= 0x80)
        {
            bytes.Add((byte)(raw | 0x80));
            raw >>= 7;
        }

        bytes.Add((byte)raw);
        return [.. bytes];
    }

    /// <summary>One record body (after its length) from raw parts, for hand-made and malformed records.</summary>
    public static byte[] RecordBody(long timestampDelta, int offsetDelta, byte[]? key, byte[]? value, params (string Key, byte[]? Value)[] headers)
    {
        var body = new List<byte> { 0 };
        body.AddRange(VarInt(timestampDelta));
        body.AddRange(VarInt(offsetDelta));
        AddNullable(body, key);
        AddNullable(body, value);
        body.AddRange(VarInt(headers.Length));
        foreach (var (hk, hv) in headers)
        {
            AddNullable(body, Utf8(hk));
            AddNullable(body, hv);
        }

        return [.. body];
    }

    public static byte[] WithLength(byte[] body) => [.. VarInt(body.Length), .. body];

    private static void AddNullable(List<byte> bytes, byte[]? value)
    {
        if (value is null)
        {
            bytes.AddRange(VarInt(-1));
        }
        else
        {
            bytes.AddRange(VarInt(value.Length));
            bytes.AddRange(value);
        }
    }

    /// <summary>Bit-at-a-time CRC-32C (reflected polynomial 0x82F63B78), the reference for the fast one.</summary>
    public static uint ReferenceCrc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var i = 0; i < 8; i++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
            }
        }

        return ~crc;
    }

    public static KafkaProtocolException AssertCorrupt(Action action)
    {
        var e = Assert.Throws<KafkaProtocolException>(action);
        Assert.Equal(ErrorCode.CorruptMessage, e.ErrorCode);
        return e;
    }

    public static void WriteInt32(byte[] bytes, int offset, int value) => BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(offset), value);
}
