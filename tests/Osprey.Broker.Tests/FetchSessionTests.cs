using System.Text;
using Osprey.Broker.Config;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

public class FetchSessionTests
{
    internal static byte[] Batch(string value)
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, Encoding.UTF8.GetBytes(value));
        return builder.ToArray();
    }

    private static FetchRequest Fetch(int sessionId, int epoch, int maxWaitMs, params (int Partition, long Offset)[] partitions) => new()
    {
        MaxWaitMs = maxWaitMs,
        MinBytes = 1,
        SessionId = sessionId,
        SessionEpoch = epoch,
        Topics = partitions.Length == 0 ? [] : [new() { Topic = "sessions", Partitions = partitions.Select(p => new FetchRequest.FetchPartition { Partition = p.Partition, FetchOffset = p.Offset, PartitionMaxBytes = 1 << 20 }).ToList() }],
    };

    private static int CountBatches(ReadOnlySpan<byte> bytes)
    {
        var count = 0;
        foreach (var _ in RecordBatch.Enumerate(bytes))
        {
            count++;
        }

        return count;
    }

    private static int[] Listed(FetchResponse response) => [.. response.Responses.SelectMany(t => t.Partitions.Select(p => p.PartitionIndex))];

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task IncrementalFetchesListOnlyWhatChanged()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("num.partitions", "3")) });
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await IdempotenceTests.CallAsync<MetadataResponse>(connection, new MetadataRequest { Topics = [new() { Name = "sessions" }], AllowAutoTopicCreation = true }, 12);
        broker.Server.Logs.Get("sessions", 0)!.Append(Batch("p0-a"));

        var full = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(0, 0, 0, (0, 0), (1, 0), (2, 0)), 12);
        Assert.NotEqual(0, full.SessionId);
        Assert.Equal([0, 1, 2], Listed(full));
        var session = full.SessionId;

        // Nothing new: the answer lists no partition.
        var quiet = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(session, 1, 50, (0, 1)), 12);
        Assert.Equal((0, session, 0), (quiet.ErrorCode, quiet.SessionId, Listed(quiet).Length));

        // An append to partition 2 wakes the long poll; only partition 2 is listed, with its record.
        var waiting = IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(session, 2, 10_000), 12);
        await Task.Delay(100, TestContext.Current.CancellationToken);
        using (var producer = await RawConnection.OpenAsync(broker.Server.Port))
        {
            var produced = await IdempotenceTests.CallAsync<ProduceResponse>(producer, new ProduceRequest
            {
                Acks = 1,
                TimeoutMs = 5000,
                TopicData = [new() { Name = "sessions", PartitionData = [new() { Index = 2, Records = Batch("p2-a") }] }],
            }, 9);
            Assert.Equal(0, produced.Responses[0].PartitionResponses[0].ErrorCode);
        }

        var woken = await waiting;
        Assert.Equal([2], Listed(woken));
        Assert.Equal(1, RecordBatch.Parse(woken.Responses[0].Partitions[0].Records!.Value.Span).Header.RecordCount);

        // Forget partition 0: data there is no longer reported.
        broker.Server.Logs.Get("sessions", 0)!.Append(Batch("p0-b"));
        var forgot = await IdempotenceTests.CallAsync<FetchResponse>(connection, new FetchRequest
        {
            MaxWaitMs = 50,
            MinBytes = 1,
            SessionId = session,
            SessionEpoch = 3,
            Topics = [new() { Topic = "sessions", Partitions = [new() { Partition = 2, FetchOffset = 1, PartitionMaxBytes = 1 << 20 }] }],
            ForgottenTopicsData = [new() { Topic = "sessions", Partitions = [0] }],
        }, 12);
        Assert.Empty(Listed(forgot));

        Assert.Equal((short)ErrorCode.InvalidFetchSessionEpoch, (await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(session, 9, 0), 12)).ErrorCode);
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, (await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(session + 1, 1, 0), 12)).ErrorCode);

        // Closing: epoch -1 ends the session and is answered as a sessionless full fetch.
        var closed = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(session, -1, 0, (0, 0)), 12);
        Assert.Equal((0, 0, 2), (closed.SessionId, (int)closed.ErrorCode, CountBatches(closed.Responses[0].Partitions[0].Records!.Value.Span)));
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, (await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(session, 4, 0), 12)).ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AFullCacheMeansNoSessionAndFullFetchesKeepWorking()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("max.incremental.fetch.session.cache.slots", "1"), ("num.partitions", "2")) });
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await IdempotenceTests.CallAsync<MetadataResponse>(connection, new MetadataRequest { Topics = [new() { Name = "sessions" }], AllowAutoTopicCreation = true }, 12);
        var first = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(0, 0, 0, (0, 0), (1, 0)), 12);
        Assert.NotEqual(0, first.SessionId);
        var second = await IdempotenceTests.CallAsync<FetchResponse>(connection, Fetch(0, 0, 0, (0, 0)), 12);
        Assert.Equal((0, 0, 1), (second.SessionId, (int)second.ErrorCode, Listed(second).Length));
    }
}
