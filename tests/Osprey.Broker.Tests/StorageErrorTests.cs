using Osprey.Broker.Config;
using Osprey.Protocol.Messages;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>A partition whose disk fails answers KAFKA_STORAGE_ERROR on the wire; the other partitions go on.</summary>
public class StorageErrorTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AProduceToAPartitionWhoseDiskIsFullIsAnsweredWithKafkaStorageError()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("num.partitions", "2")) });
        var dataDir = broker.Server.Options.DataDirectory;
        using (var connection = await RawConnection.OpenAsync(broker.Server.Port))
        {
            await IdempotenceTests.CallAsync<MetadataResponse>(connection, new MetadataRequest { Topics = [new() { Name = "failing" }], AllowAutoTopicCreation = true }, 12);
        }

        await broker.Server.DisposeAsync();

        // Partition 0's active segment becomes /dev/full: every write to it fails with ENOSPC.
        var segment = Path.Combine(dataDir, "failing-0", LogSegment0);
        File.Delete(segment);
        File.CreateSymbolicLink(segment, "/dev/full");

        await using var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir, Config = BrokerConfig.From(("num.partitions", "2")) });
        using var producer = await RawConnection.OpenAsync(restarted.Server.Port);
        foreach (var acks in new short[] { -1, 1 })
        {
            var response = await IdempotenceTests.CallAsync<ProduceResponse>(producer, new ProduceRequest
            {
                Acks = acks,
                TimeoutMs = 5000,
                TopicData = [new() { Name = "failing", PartitionData = [new() { Index = 0, Records = FetchSessionTests.Batch("lost") }, new() { Index = 1, Records = FetchSessionTests.Batch("kept") }] }],
            }, 9);
            var partitions = response.Responses[0].PartitionResponses.ToDictionary(p => p.Index);
            Assert.Equal((short)ErrorCode.KafkaStorageError, partitions[0].ErrorCode);
            Assert.Equal(-1, partitions[0].BaseOffset);
            Assert.Equal(0, partitions[1].ErrorCode);
        }

        // The failing partition still answers reads, from an empty log; the healthy one has both records.
        Assert.Equal(0, restarted.Server.Logs.Get("failing", 0)!.LogEndOffset);
        Assert.Equal(2, restarted.Server.Logs.Get("failing", 1)!.LogEndOffset);
    }

    private const string LogSegment0 = "00000000000000000000.log";
}
