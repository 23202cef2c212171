using System.Text;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;

namespace Osprey.Broker.Tests;

/// <summary>
/// Produce, Fetch and ListOffsets at every version the broker advertises: a response must be encodable at the
/// version asked (fields a version lacks must not carry values) and say the same thing.
/// </summary>
public class VersionSweepTests
{
    public static TheoryData<short> ProduceVersions() => [.. Enumerable.Range(3, 11).Select(v => (short)v)];

    public static TheoryData<short> FetchVersions() => [.. Enumerable.Range(4, 15).Select(v => (short)v)];

    public static TheoryData<short> ListOffsetsVersions() => [.. Enumerable.Range(1, 11).Select(v => (short)v)];

    public static TheoryData<short> InitProducerIdVersions() => [.. Enumerable.Range(0, 6).Select(v => (short)v)];

    [Theory(Timeout = TestLimits.Timeout)]
    [MemberData(nameof(InitProducerIdVersions))]
    public async Task InitProducerIdAtEveryVersion(short version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, version, 3);
        var (_, first) = await connection.ReceiveAsync<InitProducerIdResponse>(version);
        await connection.SendAsync(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, version, 4);
        var (_, second) = await connection.ReceiveAsync<InitProducerIdResponse>(version);
        Assert.Equal((0, 0, 0, 0), (first.ErrorCode, (int)first.ProducerEpoch, second.ErrorCode, (int)second.ProducerEpoch));
        Assert.Equal(first.ProducerId + 1, second.ProducerId);
    }

    private static async Task<(TestBroker Broker, Guid TopicId)> BrokerWithTopicAsync()
    {
        var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new MetadataRequest { Topics = [new() { Name = "sweep" }], AllowAutoTopicCreation = true }, 12, 1);
        var (_, metadata) = await connection.ReceiveAsync<MetadataResponse>(12);
        return (broker, Assert.Single(metadata.Topics).TopicId);
    }

    private static byte[] Batch(string value)
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(5000, null, Encoding.UTF8.GetBytes(value));
        return builder.ToArray();
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [MemberData(nameof(ProduceVersions))]
    public async Task ProduceAtEveryVersion(short version)
    {
        var (broker, id) = await BrokerWithTopicAsync();
        await using var _ = broker;
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = version < 13 ? "sweep" : "", TopicId = version >= 13 ? id : Guid.Empty, PartitionData = [new() { Index = 0, Records = Batch("v" + version) }] }],
        };
        await connection.SendAsync(request, version, 7);
        var (correlation, response) = await connection.ReceiveAsync<ProduceResponse>(version);
        Assert.Equal(7, correlation);
        var partition = Assert.Single(Assert.Single(response.Responses).PartitionResponses);
        Assert.Equal((0, 0L), (partition.ErrorCode, partition.BaseOffset));
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [MemberData(nameof(FetchVersions))]
    public async Task FetchAtEveryVersion(short version)
    {
        var (broker, id) = await BrokerWithTopicAsync();
        await using var _ = broker;
        broker.Server.Logs.Get("sweep", 0)!.Append(Batch("hello"));
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var request = new FetchRequest
        {
            MaxWaitMs = 0,
            MinBytes = 1,
            Topics = [new() { Topic = version < 13 ? "sweep" : "", TopicId = version >= 13 ? id : Guid.Empty, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        await connection.SendAsync(request, version, 9);
        var (_, response) = await connection.ReceiveAsync<FetchResponse>(version);
        var partition = Assert.Single(Assert.Single(response.Responses).Partitions);
        Assert.Equal((0, 1L), (partition.ErrorCode, partition.HighWatermark));
        var batch = RecordBatch.Parse(partition.Records!.Value.Span);
        Assert.Equal(1, batch.Header.RecordCount);
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [MemberData(nameof(ListOffsetsVersions))]
    public async Task ListOffsetsAtEveryVersion(short version)
    {
        var (broker, _) = await BrokerWithTopicAsync();
        await using var __ = broker;
        broker.Server.Logs.Get("sweep", 0)!.Append(Batch("a"));
        broker.Server.Logs.Get("sweep", 0)!.Append(Batch("b"));
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "sweep", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }, new() { PartitionIndex = 0, Timestamp = -2 }] }],
        };
        await connection.SendAsync(request, version, 3);
        var (_, response) = await connection.ReceiveAsync<ListOffsetsResponse>(version);
        var partitions = Assert.Single(response.Topics).Partitions;
        Assert.Equal([2L, 0L], partitions.Select(p => p.Offset));
        Assert.All(partitions, p => Assert.Equal(0, p.ErrorCode));
    }
}
