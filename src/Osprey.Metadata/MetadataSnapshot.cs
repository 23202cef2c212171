using System.Buffers.Binary;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;

namespace Osprey.Metadata;

/// <summary>
/// An image as a file: the records that rebuild it, so a node can start from a snapshot instead of the whole log.
/// Layout: the 8-byte magic <c>OSPRSNP1</c>, the image's last metadata offset (int64, big-endian), record batches of
/// metadata records (each with its own CRC-32C), and a CRC-32C (uint32) of everything before it. A file that is cut
/// short, altered or of another format is refused with <see cref="CorruptMetadataException"/>, never half read.
/// </summary>
public static class MetadataSnapshot
{
    private const int RecordsPerBatch = 1000;
    private static ReadOnlySpan<byte> Magic => "OSPRSNP1"u8;

    /// <summary>The records that rebuild <paramref name="image"/> when applied to an empty one, in an order that applies.</summary>
    public static IEnumerable<IVersionedMessage> ToRecords(ClusterImage image)
    {
        if (image.ClusterId is { } clusterId)
        {
            yield return new ClusterIdentityRecord { ClusterId = clusterId };
        }

        foreach (var (name, level) in image.FinalizedFeatures)
        {
            yield return new FeatureLevelRecord { Name = name, FeatureLevel = level };
        }

        foreach (var broker in image.Brokers.Values)
        {
            var record = new RegisterBrokerRecord
            {
                BrokerId = broker.Id,
                IncarnationId = broker.IncarnationId,
                BrokerEpoch = broker.Epoch,
                Rack = broker.Rack,
                Fenced = broker.Fenced,
                InControlledShutdown = broker.InControlledShutdown,
            };
            record.EndPoints.AddRange(broker.Endpoints.Select(e => new RegisterBrokerRecord.BrokerEndpoint { Name = e.Name, Host = e.Host, Port = (ushort)e.Port, SecurityProtocol = e.SecurityProtocol }));
            record.Features.AddRange(broker.SupportedFeatures.Select(f => new RegisterBrokerRecord.BrokerFeature { Name = f.Key, MinSupportedVersion = f.Value.Min, MaxSupportedVersion = f.Value.Max }));
            yield return record;
        }

        foreach (var (resource, configs) in image.BrokerConfigs)
        {
            foreach (var (name, value) in configs)
            {
                yield return new ConfigRecord { ResourceType = ClusterImage.BrokerResource, ResourceName = resource, Name = name, Value = value };
            }
        }

        foreach (var topic in image.Topics.Values)
        {
            yield return new TopicRecord { Name = topic.Name, TopicId = topic.TopicId };
            foreach (var p in topic.Partitions.Values)
            {
                yield return new PartitionRecord
                {
                    PartitionId = p.PartitionId,
                    TopicId = topic.TopicId,
                    Replicas = [.. p.Replicas],
                    Isr = [.. p.Isr],
                    AddingReplicas = [.. p.AddingReplicas],
                    RemovingReplicas = [.. p.RemovingReplicas],
                    Leader = p.Leader,
                    LeaderRecoveryState = p.LeaderRecoveryState,
                    LeaderEpoch = p.LeaderEpoch,
                    PartitionEpoch = p.PartitionEpoch,
                    EligibleLeaderReplicas = [.. p.EligibleLeaderReplicas],
                    LastKnownElr = [.. p.LastKnownElr],
                };
            }

            foreach (var (name, value) in topic.Configs)
            {
                yield return new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = topic.Name, Name = name, Value = value };
            }
        }

        foreach (var (user, mechanisms) in image.ScramCredentials)
        {
            foreach (var (mechanism, credential) in mechanisms)
            {
                yield return new UserScramCredentialRecord
                {
                    Name = user,
                    Mechanism = mechanism,
                    Salt = [.. credential.Salt],
                    StoredKey = [.. credential.StoredKey],
                    ServerKey = [.. credential.ServerKey],
                    Iterations = credential.Iterations,
                };
            }
        }

        if (image.NextProducerId > 0)
        {
            yield return new ProducerIdsRecord { BrokerId = -1, BrokerEpoch = -1, NextProducerId = image.NextProducerId };
        }
    }

    /// <summary>The snapshot file's bytes for <paramref name="image"/>.</summary>
    public static byte[] Write(ClusterImage image)
    {
        using var output = new MemoryStream();
        output.Write(Magic);
        Span<byte> offset = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(offset, image.LastOffset);
        output.Write(offset);
        var builder = new RecordBatchBuilder();
        var count = 0L;
        try
        {
            foreach (var record in ToRecords(image))
            {
                builder.Append(0, null, MetadataRecordCodec.Serialize(record));
                if (++count % RecordsPerBatch == 0)
                {
                    output.Write(builder.Build().Span);
                    builder.Dispose();
                    builder = new RecordBatchBuilder { BaseOffset = count };
                }
            }

            if (count % RecordsPerBatch != 0)
            {
                output.Write(builder.Build().Span);
            }
        }
        finally
        {
            builder.Dispose();
        }

        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32C.Compute(output.GetBuffer().AsSpan(0, (int)output.Length)));
        output.Write(crc);
        return output.ToArray();
    }

    /// <summary>The image a snapshot file holds. <paramref name="source"/> names the file in the error.</summary>
    public static ClusterImage Read(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length < Magic.Length + 8 + 4 || !bytes[..Magic.Length].SequenceEqual(Magic))
        {
            throw new CorruptMetadataException($"The metadata snapshot {source} is not an Osprey metadata snapshot (no OSPRSNP1 header, or {bytes.Length} bytes are too few); the node will not guess its state.");
        }

        var body = bytes[..^4];
        var stored = BinaryPrimitives.ReadUInt32BigEndian(bytes[^4..]);
        var computed = Crc32C.Compute(body);
        if (stored != computed)
        {
            throw new CorruptMetadataException($"The metadata snapshot {source} is damaged: its CRC-32C is 0x{stored:X8} but its contents give 0x{computed:X8}; the node will not guess its state.");
        }

        var lastOffset = BinaryPrimitives.ReadInt64BigEndian(body[Magic.Length..]);
        var image = ClusterImage.Empty;
        try
        {
            using var decompressed = new PooledBufferWriter();
            foreach (var batch in RecordBatch.Enumerate(body[(Magic.Length + 8)..]))
            {
                batch.EnsureValidCrc();
                foreach (var record in batch.GetRecords(decompressed))
                {
                    image = image.Apply(MetadataRecordCodec.Deserialize(record.Value.ToArray()), lastOffset);
                }
            }
        }
        catch (Exception e) when (e is KafkaProtocolException or FormatException or InvalidDataException)
        {
            throw new CorruptMetadataException($"The metadata snapshot {source} cannot be read: {e.Message}", e);
        }

        return image with { LastOffset = lastOffset };
    }
}

/// <summary>Metadata on disk (a snapshot, a quorum log entry) that cannot be trusted: the node stops rather than guess.</summary>
public sealed class CorruptMetadataException : Exception
{
    public CorruptMetadataException(string message)
        : base(message)
    {
    }

    public CorruptMetadataException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
