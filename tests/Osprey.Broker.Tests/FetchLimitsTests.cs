using Osprey.Broker.Config;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;

namespace Osprey.Broker.Tests;

/// <summary>
/// Fetch's byte limits as Kafka applies them: PartitionMaxBytes per partition, MaxBytes for the whole answer, and a
/// first batch larger than either returned whole — but only while the answer is still empty, so one oversized batch
/// never turns into many. And a session's partitions taking turns when the answer can hold only some of them.
/// </summary>
public class FetchLimitsTests
{
    private const string Topic = "limits";

    private static byte[] Batch(int valueBytes)
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, new byte[valueBytes]);
        return builder.ToArray();
    }

    private static async Task<(TestBroker Broker, RawConnection Connection)> StartAsync(int partitions)
    {
        var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("num.partitions", partitions.ToString(System.Globalization.CultureInfo.InvariantCulture))) });
        var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await IdempotenceTests.CallAsync<MetadataResponse>(connection, new MetadataRequest { Topics = [new() { Name = Topic }], AllowAutoTopicCreation = true }, 12);
        return (broker, connection);
    }

    private static FetchRequest Fetch(int maxBytes, int partitionMaxBytes, int sessionId, int epoch, params (int Partition, long Offset)[] partitions) => new()
    {
        MaxWaitMs = 0,
        MinBytes = 1,
        MaxBytes = maxBytes,
        SessionId = sessionId,
        SessionEpoch = epoch,
        Topics = partitions.Length == 0 ? [] : [new() { Topic = Topic, Partitions = [.. partitions.Select(p => new FetchRequest.FetchPartition { Partition = p.Partition, FetchOffset = p.Offset, PartitionMaxBytes = partitionMaxBytes })] }],
    };

    /// <summary>Per partition listed: how many batches came back and how many bytes they are.</summary>
    private static Dictionary<int, (int Batches, int Bytes)> Returned(FetchResponse response) =>
        response.Responses.SelectMany(t => t.Partitions).ToDictionary(
            p => p.PartitionIndex,
            p =>
            {
                Assert.Equal(0, p.ErrorCode);
                var bytes = p.Records?.Length ?? 0;
                var batches = 0;
                foreach (var _ in RecordBatch.Enumerate(p.Records is { } records ? records.Span : default))
                {
                    batches++;
                }

                return (batches, bytes);
            });

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheRequestWideLimitStopsAtWholeBatchesAcrossPartitions()
    {
        var (broker, connection) = await StartAsync(3);
        await using var _ = broker;
        using var __ = connection;
        var batch = Batch(1000);
        for (var p = 0; p < 3; p++)
        {
            for (var i = 0; i < 3; i++)
            {
                broker.Server.Logs.Get(Topic, p)!.Append(batch);
            }
        }

        // Room for two and a half batches in all: two from the first partition, none cut in half, none from the others.
        var response = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch((batch.Length * 5) / 2, 1 << 20, 0, -1, (0, 0), (1, 0), (2, 0)), 12);
        var returned = Returned(response);
        Assert.Equal((2, 2 * batch.Length), returned[0]);
        Assert.Equal((0, 0), returned[1]);
        Assert.Equal((0, 0), returned[2]);

        // Room for four: two, then two more from the next partition.
        response = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(batch.Length * 4, 1 << 20, 0, -1, (0, 1), (1, 0), (2, 0)), 12);
        returned = Returned(response);
        Assert.Equal((2, 2 * batch.Length), returned[0]);
        Assert.Equal((2, 2 * batch.Length), returned[1]);
        Assert.Equal((0, 0), returned[2]);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ThePartitionLimitCapsEachPartition()
    {
        var (broker, connection) = await StartAsync(2);
        await using var _ = broker;
        using var __ = connection;
        var batch = Batch(1000);
        for (var p = 0; p < 2; p++)
        {
            for (var i = 0; i < 4; i++)
            {
                broker.Server.Logs.Get(Topic, p)!.Append(batch);
            }
        }

        var response = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(1 << 20, (batch.Length * 3) - 1, 0, -1, (0, 0), (1, 2)), 12);
        var returned = Returned(response);
        Assert.Equal((2, 2 * batch.Length), returned[0]);
        Assert.Equal((2, 2 * batch.Length), returned[1]);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnOversizedBatchIsReturnedWholeOnlyAsTheFirstDataOfTheAnswer()
    {
        var (broker, connection) = await StartAsync(3);
        await using var _ = broker;
        using var __ = connection;
        var big = Batch(5000);
        broker.Server.Logs.Get(Topic, 1)!.Append(big);
        broker.Server.Logs.Get(Topic, 2)!.Append(big);

        // Partition 0 has nothing; partition 1's batch is over both limits and still comes whole (the consumer must
        // make progress); partition 2's does not come, as the answer is no longer empty.
        var response = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(100, 100, 0, -1, (0, 0), (1, 0), (2, 0)), 12);
        var returned = Returned(response);
        Assert.Equal((0, 0), returned[0]);
        Assert.Equal((1, big.Length), returned[1]);
        Assert.Equal((0, 0), returned[2]);

        // The next fetch, from partition 2 first in line, gets it.
        response = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(100, 100, 0, -1, (2, 0), (1, 1)), 12);
        returned = Returned(response);
        Assert.Equal((1, big.Length), returned[2]);
        Assert.Equal((0, 0), returned[1]);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ASessionsPartitionsTakeTurnsWhenTheAnswerHoldsOnlyOne()
    {
        var (broker, connection) = await StartAsync(3);
        await using var _ = broker;
        using var __ = connection;
        var batch = Batch(1000);
        for (var p = 0; p < 3; p++)
        {
            for (var i = 0; i < 10; i++)
            {
                broker.Server.Logs.Get(Topic, p)!.Append(batch);
            }
        }

        // Each answer holds one batch. Without turns, partition 0 (busy for ten fetches) would starve the others.
        var full = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(batch.Length, 1 << 20, 0, 0, (0, 0), (1, 0), (2, 0)), 12);
        Assert.NotEqual(0, full.SessionId);
        var withData = new List<int>();
        var offsets = new Dictionary<int, long> { [0] = 0, [1] = 0, [2] = 0 };
        Record(full);
        for (var epoch = 1; epoch <= 5; epoch++)
        {
            // The client moves its offset for the partition that returned data (an update within the session).
            var moved = withData[^1];
            var next = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(batch.Length, 1 << 20, full.SessionId, epoch, (moved, offsets[moved])), 12);
            Assert.Equal(0, next.ErrorCode);
            Record(next);
        }

        Assert.Equal([0, 1, 2, 0, 1, 2], withData);
        Assert.Equal(2, offsets[0]);

        void Record(FetchResponse response)
        {
            var returned = Returned(response).Where(r => r.Value.Batches > 0).ToList();
            var (partition, (batches, _)) = Assert.Single(returned);
            withData.Add(partition);
            offsets[partition] += batches;
        }
    }
}
