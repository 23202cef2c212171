using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Groups;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Tests;

/// <summary>
/// What the group coordinator makes of a __consumer_offsets partition at load: tombstones remove what they name
/// (also what was never there), an unreadable record is skipped alone, a batch damaged on disk is skipped whole,
/// and everything after either still loads.
/// </summary>
public class GroupLoadingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Batch(params (byte[] Key, byte[]? Value)[] records)
    {
        using var builder = new RecordBatchBuilder();
        foreach (var (key, value) in records)
        {
            builder.Append(1_700_000_000_000, key, value);
        }

        return builder.ToArray();
    }

    private static byte[] Offset(long offset) => GroupRecords.OffsetValue(new CommittedOffset(offset, -1, "", 1_700_000_000_000));

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TombstonesUnreadableRecordsAndDamagedBatchesAreHandledAtLoad()
    {
        var (broker, groups, time) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _ = broker;
        foreach (var topic in new[] { "t0", "t1", "t2" })
        {
            await TransactionCoordinatorTests.CreateTopicAsync(broker, topic);
        }

        var logs = broker.Server.Services.GetRequiredService<LogManager>();
        var loaderLog = logs.Get(GroupCoordinator.TopicName, groups.PartitionFor("loader"))!;
        await logs.AppendAsync(loaderLog, Batch(
            (GroupRecords.OffsetKey("loader", "t0", 0), Offset(5)),
            (GroupRecords.OffsetKey("loader", "t1", 0), Offset(7)),
            ([0, 1, 0xFF], [1, 2, 3]), // an offset key cut short
            ([0x7F, 0x7F, 1], [1]), // a key version nobody knows: left alone
            (GroupRecords.OffsetKey("loader", "t0", 0), null), // the tombstone of t0's offset
            (GroupRecords.OffsetKey("loader", "t2", 0), [0, 3, 9]), // a value cut short
            (GroupRecords.OffsetKey("loader", "never", 0), null)), durable: true); // a tombstone of nothing

        // The next batch is damaged on disk below (one byte flipped): it goes whole; the one after it still loads.
        await logs.AppendAsync(loaderLog, Batch((GroupRecords.OffsetKey("loader", "t2", 0), Offset(9))), durable: true);
        var segment = loaderLog.ActiveSegment.LogPath;
        var damagedAt = new FileInfo(segment).Length - 1;
        await logs.AppendAsync(loaderLog, Batch((GroupRecords.OffsetKey("loader", "t1", 0), Offset(8))), durable: true);

        var goneLog = logs.Get(GroupCoordinator.TopicName, groups.PartitionFor("gone"))!;
        await logs.AppendAsync(goneLog, Batch(
            (GroupRecords.ConsumerGroupKey("gone"), GroupRecords.ConsumerGroupValue(3)),
            (GroupRecords.ConsumerGroupKey("gone"), null),
            (GroupRecords.GroupKey("never-classic"), null)), durable: true);

        var dataDir = broker.Server.Options.DataDirectory;
        await broker.Server.DisposeAsync();
        using (var file = File.OpenHandle(segment, FileMode.Open, FileAccess.ReadWrite))
        {
            var b = new byte[1];
            RandomAccess.Read(file, b, damagedAt);
            b[0] ^= 0x5A;
            RandomAccess.Write(file, b, damagedAt);
        }

        var (restarted, reloaded, _) = await GroupCoordinatorSimulationTests.StartAsync(dataDir, time);
        await using var __ = restarted;
        var (error, topics) = await reloaded.FetchOffsetsAsync("loader", null, Ct);
        Assert.Equal(Osprey.Protocol.ErrorCode.None, error);
        var committed = topics.SelectMany(t => t.Partitions.Where(p => p.Offset is not null).Select(p => (t.Topic, p.Partition, p.Offset!.Offset))).ToList();
        Assert.Equal([("t1", 0, 8L)], committed);
        Assert.DoesNotContain(reloaded.LoadedShards, shard => shard.ConsumerGroups.ContainsKey("gone") || shard.Groups.ContainsKey("never-classic"));
        Assert.True(reloaded.AllLoaded);
    }
}
