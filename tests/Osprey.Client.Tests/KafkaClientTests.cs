using System.Text;
using Osprey.Broker.Config;
using Osprey.Broker.Tests;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Client.Tests;

/// <summary>Osprey.Client against an in-process broker: the calls the CLI and the load tools are built on.</summary>
public class KafkaClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Batch(int from, int count)
    {
        using var builder = new RecordBatchBuilder();
        for (var i = from; i < from + count; i++)
        {
            builder.Append(1_700_000_000_000 + i, Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"v{i}"));
        }

        return builder.ToArray();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task VersionsAreNegotiatedFromTheBrokersApiVersions()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = new KafkaClient(broker.Bootstrap);
        var connection = await client.AnyAsync(Ct);
        Assert.Equal((3, 13), connection.BrokerVersions[ApiKey.Produce]);
        Assert.Equal(9, connection.VersionFor(ApiKey.Produce, clientMax: 9));
        Assert.Equal(13, connection.VersionFor(ApiKey.Produce, clientMax: 20));
        var refused = Assert.Throws<KafkaException>(() => connection.VersionFor(ApiKey.Produce, clientMax: 2));
        Assert.Equal(ErrorCode.UnsupportedVersion, refused.ErrorCode);
        Assert.False(connection.Supports(ApiKey.SaslHandshake));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ProducedBatchesAreFetchedBackWithTheirOffsetsAndTheWatermarksAgree()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = new KafkaClient(broker.Bootstrap);
        var id = await client.CreateTopicAsync("client-round-trip", 2, 1, new Dictionary<string, string>(), validateOnly: false, Ct);
        var topic = await client.TopicAsync("client-round-trip", Ct);
        Assert.Equal(id, topic.TopicId);
        var leader = await client.LeaderAsync("client-round-trip", 1, Ct);
        Assert.Equal(0, await client.ProduceAsync(leader, "client-round-trip", 1, Batch(0, 5), acks: -1, Ct));
        Assert.Equal(5, await client.ProduceAsync(leader, "client-round-trip", 1, Batch(5, 3), acks: 1, Ct));

        var fetched = await client.FetchAsync(leader, "client-round-trip", new Dictionary<int, long> { [1] = 2 }, 500, 1 << 20, 1 << 20, Ct);
        var (records, highWatermark) = fetched[1];
        Assert.Equal(8, highWatermark);
        Assert.Equal(Enumerable.Range(2, 6).Select(i => ((long)i, $"k{i}", $"v{i}")), records.Select(r => (r.Offset, Encoding.UTF8.GetString(r.Key!), Encoding.UTF8.GetString(r.Value!))));
        Assert.Equal(8, await client.ListOffsetAsync("client-round-trip", 1, -1, Ct));
        Assert.Equal(0, await client.ListOffsetAsync("client-round-trip", 1, -2, Ct));
        Assert.Equal(3, await client.ListOffsetAsync("client-round-trip", 1, 1_700_000_000_003, Ct));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task GroupMembersSplitThePartitionsCommitAndLeave()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.num.partitions", "3")) });
        await using var client = new KafkaClient(broker.Bootstrap);
        await client.CreateTopicAsync("client-groups", 4, 1, new Dictionary<string, string>(), validateOnly: false, Ct);
        await using var first = new GroupMember(client, "client-group", ["client-groups"]) { SessionTimeoutMs = 10_000, HeartbeatIntervalMs = 500 };
        Assert.Equal(4, (await first.JoinAsync(Ct)).Count);

        // A second member (a client of its own, as a second consumer is: a JoinGroup waiting on a connection holds back
        // the answers behind it) joins: the first learns of the rebalance from its heartbeats and both rejoin.
        await using var other = new KafkaClient(broker.Bootstrap);
        await using var second = new GroupMember(other, "client-group", ["client-groups"]) { SessionTimeoutMs = 10_000, HeartbeatIntervalMs = 500 };
        var joining = second.JoinAsync(Ct);
        var deadline = DateTime.UtcNow.AddSeconds(30); // only keeps a broken group from hanging the test
        while (!first.RebalanceNeeded)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first member never heard of the rebalance");
            await Task.Delay(10, Ct);
        }

        var firstShare = await first.JoinAsync(Ct);
        var secondShare = await joining;
        Assert.Equal(first.Generation, second.Generation);
        Assert.Equal([0, 1, 2, 3], firstShare.Concat(secondShare).Select(a => a.Partition).Order());
        Assert.Equal(2, firstShare.Count);

        await first.CommitAsync(firstShare.ToDictionary(a => a, a => (long)a.Partition + 10), Ct);
        var committed = await client.CommittedOffsetsAsync("client-group", Ct);
        Assert.Equal(firstShare.Select(a => a.Partition + 10L).Order(), committed.Values.Order());
        await first.LeaveAsync(Ct);
        await second.LeaveAsync(Ct);
        Assert.Equal("", first.MemberId);
    }
}
