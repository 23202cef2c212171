using System.Buffers.Binary;

namespace Osprey.Protocol.Records;

/// <summary>The type in a control record's key. Other types (KRaft's) pass through as their numeric value.</summary>
public enum ControlRecordType : short
{
    Abort = 0,
    Commit = 1,
}

/// <summary>A control record's key: version int16, type int16.</summary>
public readonly record struct ControlRecordKey(short Version, ControlRecordType Type);

/// <summary>A transaction marker: the key says commit or abort, the value carries the coordinator epoch.</summary>
public readonly record struct EndTransactionMarker(ControlRecordType Type, int CoordinatorEpoch);

/// <summary>
/// Control records, the single records of control batches. Transaction markers have key
/// [version int16 = 0][type int16] and value [version int16 = 0][coordinatorEpoch int32].
/// </summary>
public static class ControlRecords
{
    public const int KeySize = 4;
    public const int EndTransactionMarkerValueSize = 6;
    public const short CurrentKeyVersion = 0;
    public const short CurrentEndTransactionMarkerVersion = 0;

    /// <summary>Parses a control record key. Newer versions are read by their version-0 prefix, as Kafka does.</summary>
    public static ControlRecordKey ParseKey(ReadOnlySpan<byte> key)
    {
        if (key.Length < KeySize)
        {
            throw Corrupt($"A control record key needs {KeySize} bytes but has {key.Length}.");
        }

        var version = BinaryPrimitives.ReadInt16BigEndian(key);
        if (version < 0)
        {
            throw Corrupt($"A control record key has the invalid version {version}.");
        }

        return new ControlRecordKey(version, (ControlRecordType)BinaryPrimitives.ReadInt16BigEndian(key[2..]));
    }

    public static ControlRecordKey ParseKey(Record record)
    {
        if (record.IsKeyNull)
        {
            throw Corrupt($"The control record at offset {record.Offset} has a null key.");
        }

        return ParseKey(record.Key);
    }

    public static EndTransactionMarker ParseEndTransactionMarker(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var type = ParseKey(key).Type;
        if (type is not (ControlRecordType.Abort or ControlRecordType.Commit))
        {
            throw Corrupt($"Control record type {(short)type} is not a transaction marker.");
        }

        if (value.Length < EndTransactionMarkerValueSize)
        {
            throw Corrupt($"A transaction marker value needs {EndTransactionMarkerValueSize} bytes but has {value.Length}.");
        }

        var version = BinaryPrimitives.ReadInt16BigEndian(value);
        if (version < 0)
        {
            throw Corrupt($"A transaction marker value has the invalid version {version}.");
        }

        return new EndTransactionMarker(type, BinaryPrimitives.ReadInt32BigEndian(value[2..]));
    }

    public static EndTransactionMarker ParseEndTransactionMarker(Record record)
    {
        if (record.IsKeyNull || record.IsValueNull)
        {
            throw Corrupt($"The transaction marker at offset {record.Offset} has a null key or value.");
        }

        return ParseEndTransactionMarker(record.Key, record.Value);
    }

    public static void WriteKey(Span<byte> destination, ControlRecordType type)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, CurrentKeyVersion);
        BinaryPrimitives.WriteInt16BigEndian(destination[2..], (short)type);
    }

    public static void WriteEndTransactionMarkerValue(Span<byte> destination, int coordinatorEpoch)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, CurrentEndTransactionMarkerVersion);
        BinaryPrimitives.WriteInt32BigEndian(destination[2..], coordinatorEpoch);
    }

    /// <summary>
    /// Appends a transaction marker to <paramref name="builder"/> and marks its batch as a transactional control
    /// batch. The producer id and epoch of the batch must be those of the transaction.
    /// </summary>
    public static void AppendEndTransactionMarker(RecordBatchBuilder builder, EndTransactionMarker marker, long timestamp)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (marker.Type is not (ControlRecordType.Abort or ControlRecordType.Commit))
        {
            throw new ArgumentOutOfRangeException(nameof(marker), marker.Type, "A transaction marker commits or aborts.");
        }

        Span<byte> key = stackalloc byte[KeySize];
        Span<byte> value = stackalloc byte[EndTransactionMarkerValueSize];
        WriteKey(key, marker.Type);
        WriteEndTransactionMarkerValue(value, marker.CoordinatorEpoch);
        builder.IsControlBatch = true;
        builder.IsTransactional = true;
        builder.Append(timestamp, key, keyIsNull: false, value, valueIsNull: false);
    }

    /// <summary>A complete, uncompressed batch holding one transaction marker, as the coordinator writes it.</summary>
    public static byte[] CreateEndTransactionMarkerBatch(
        EndTransactionMarker marker,
        long producerId,
        short producerEpoch,
        long timestamp,
        long baseOffset = 0,
        int partitionLeaderEpoch = RecordBatchHeader.NoPartitionLeaderEpoch)
    {
        using var builder = new RecordBatchBuilder
        {
            BaseOffset = baseOffset,
            PartitionLeaderEpoch = partitionLeaderEpoch,
            ProducerId = producerId,
            ProducerEpoch = producerEpoch,
        };
        AppendEndTransactionMarker(builder, marker, timestamp);
        return builder.ToArray();
    }

    private static KafkaProtocolException Corrupt(string message) => new(ErrorCode.CorruptMessage, message);
}
