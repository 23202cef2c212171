using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;
using Osprey.Protocol.Records;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>
/// Requests captured from librdkafka 2.16 (see Osprey.Compatibility.Tests.GoldenCaptureTests, which recaptures them
/// live), decoded field by field and re-encoded to the same bytes.
/// </summary>
public class GoldenTests
{
    private static byte[] Load(string name) =>
        Convert.FromHexString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", name)).Trim());

    private static (RequestHeader Header, T Body) Decode<T>(byte[] frame, short expectedVersion)
        where T : IApiMessage, new()
    {
        var reader = new KafkaReader(frame);
        var header = new RequestHeader();
        var body = new T();
        var headerVersion = ApiMessages.RequestHeaderVersion(body.ApiKey, expectedVersion);
        header.Read(ref reader, headerVersion);
        Assert.Equal((short)body.ApiKey, header.RequestApiKey);
        Assert.Equal(expectedVersion, header.RequestApiVersion);
        body.Read(ref reader, expectedVersion);
        Assert.True(reader.IsAtEnd);

        var again = new byte[header.Size(headerVersion) + body.Size(expectedVersion)];
        var writer = new KafkaWriter(again);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, expectedVersion);
        Assert.Equal(Convert.ToHexString(frame), Convert.ToHexString(again));
        return (header, body);
    }

    [Fact]
    public void ApiVersionsV3()
    {
        var (header, body) = Decode<ApiVersionsRequest>(Load("librdkafka-2.16-ApiVersions-v3.hex"), 3);
        Assert.Equal(1, header.CorrelationId);
        Assert.Equal("golden-consumer", header.ClientId);
        Assert.Equal("confluent-kafka-dotnet", body.ClientSoftwareName);
        Assert.Equal("2.16.0", body.ClientSoftwareVersion);
    }

    [Fact]
    public void MetadataV13()
    {
        var (header, body) = Decode<MetadataRequest>(Load("librdkafka-2.16-Metadata-v13.hex"), 13);
        Assert.Equal("golden-consumer", header.ClientId);
        var topic = Assert.Single(body.Topics!);
        Assert.Equal("golden", topic.Name);
        Assert.Equal(Guid.Empty, topic.TopicId);
        Assert.False(body.AllowAutoTopicCreation);
        Assert.False(body.IncludeTopicAuthorizedOperations);
    }

    [Fact]
    public void ProduceV10()
    {
        var (header, body) = Decode<ProduceRequest>(Load("librdkafka-2.16-Produce-v10.hex"), 10);
        Assert.Equal("golden-client", header.ClientId);
        Assert.Null(body.TransactionalId);
        Assert.Equal((short)-1, body.Acks);
        Assert.Equal(7000, body.TimeoutMs);
        var topic = Assert.Single(body.TopicData);
        Assert.Equal("golden", topic.Name);
        var partition = Assert.Single(topic.PartitionData);
        Assert.Equal(0, partition.Index);
        Assert.Equal(82, partition.Records!.Value.Length);

        // The record batch librdkafka wrote: one record, key "k1", value "hello golden", no headers.
        var batch = RecordBatch.Parse(partition.Records.Value.Span);
        Assert.True(batch.VerifyCrc());
        Assert.Equal(0, batch.Header.BaseOffset);
        Assert.Equal(0, batch.Header.PartitionLeaderEpoch); // librdkafka writes 0, not -1
        Assert.Equal(CompressionType.None, batch.Header.Compression);
        Assert.Equal(TimestampType.CreateTime, batch.Header.TimestampType);
        Assert.Equal(-1, batch.Header.ProducerId);
        Assert.Equal(1, batch.Header.RecordCount);
        Assert.Equal(batch.Header.BaseTimestamp, batch.Header.MaxTimestamp);
        var records = batch.GetRecords();
        Assert.True(records.MoveNext());
        Assert.Equal("k1", System.Text.Encoding.UTF8.GetString(records.Current.Key));
        Assert.Equal("hello golden", System.Text.Encoding.UTF8.GetString(records.Current.Value));
        Assert.Equal(0, records.Current.HeaderCount);
        Assert.False(records.MoveNext());
    }

    [Fact]
    public void FetchV16()
    {
        var (header, body) = Decode<FetchRequest>(Load("librdkafka-2.16-Fetch-v16.hex"), 16);
        Assert.Equal("golden-consumer", header.ClientId);
        Assert.Equal(-1, body.ReplicaId);
        Assert.Equal(321, body.MaxWaitMs);
        Assert.Equal(7, body.MinBytes);
        Assert.Equal(1_048_576, body.MaxBytes);
        Assert.Equal((sbyte)1, body.IsolationLevel);
        Assert.Equal(0, body.SessionId);
        Assert.Equal(-1, body.SessionEpoch);
        var topic = Assert.Single(body.Topics);
        Assert.Equal(Guid.Parse("6f1c3b2a-0000-4000-8000-000000000001"), topic.TopicId);
        var partition = Assert.Single(topic.Partitions);
        Assert.Equal(0, partition.Partition);
        Assert.Equal(0, partition.CurrentLeaderEpoch); // the epoch the capture broker's metadata gave
        Assert.Equal(5, partition.FetchOffset);
        Assert.Equal(-1, partition.LastFetchedEpoch);
        Assert.Equal(-1, partition.LogStartOffset);
        Assert.Equal(65_536, partition.PartitionMaxBytes);
        Assert.Empty(body.ForgottenTopicsData);
        Assert.Equal("", body.RackId);
    }

    [Fact]
    public void CreateTopicsV4()
    {
        var (header, body) = Decode<CreateTopicsRequest>(Load("librdkafka-2.16-CreateTopics-v4.hex"), 4);
        Assert.Equal("golden-admin", header.ClientId);
        var topic = Assert.Single(body.Topics);
        Assert.Equal("orders", topic.Name);
        Assert.Equal(6, topic.NumPartitions);
        Assert.Equal((short)1, topic.ReplicationFactor);
        Assert.Equal(["cleanup.policy", "retention.ms"], topic.Configs.Select(c => c.Name));
        Assert.Equal(["compact", "3600000"], topic.Configs.Select(c => c.Value));
        Assert.Equal(9000, body.TimeoutMs);
        Assert.False(body.ValidateOnly);
    }
}
