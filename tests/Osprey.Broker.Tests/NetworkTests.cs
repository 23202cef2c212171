using Osprey.Broker.Config;
using System.Buffers.Binary;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Confluent.Kafka;
using Osprey.Protocol;
using ErrorCode = Osprey.Protocol.ErrorCode;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

public class NetworkTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ApiVersionsAdvertisesExactlyTheImplementedApis()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new ApiVersionsRequest { ClientSoftwareName = "raw", ClientSoftwareVersion = "1.0" }, 3, correlationId: 11);
        var (correlation, response) = await connection.ReceiveAsync<ApiVersionsResponse>(3);
        Assert.Equal(11, correlation);
        Assert.Equal(0, response.ErrorCode);
        Assert.Equal(
            [
                ((short)ApiKey.Produce, (short)3, (short)13), ((short)ApiKey.Fetch, (short)4, (short)18),
                ((short)ApiKey.ListOffsets, (short)1, (short)11), ((short)ApiKey.Metadata, (short)0, (short)13),
                ((short)ApiKey.OffsetCommit, (short)2, (short)10), ((short)ApiKey.OffsetFetch, (short)1, (short)10),
                ((short)ApiKey.FindCoordinator, (short)0, (short)6), ((short)ApiKey.JoinGroup, (short)0, (short)9),
                ((short)ApiKey.Heartbeat, (short)0, (short)4), ((short)ApiKey.LeaveGroup, (short)0, (short)5),
                ((short)ApiKey.SyncGroup, (short)0, (short)5), ((short)ApiKey.DescribeGroups, (short)0, (short)6),
                ((short)ApiKey.ListGroups, (short)0, (short)5), ((short)ApiKey.ApiVersions, (short)0, (short)4),
                ((short)ApiKey.CreateTopics, (short)2, (short)7), ((short)ApiKey.DeleteTopics, (short)1, (short)6),
                ((short)ApiKey.DeleteRecords, (short)0, (short)2), ((short)ApiKey.InitProducerId, (short)0, (short)5),
                ((short)ApiKey.OffsetForLeaderEpoch, (short)2, (short)4), ((short)ApiKey.AddPartitionsToTxn, (short)0, (short)5),
                ((short)ApiKey.AddOffsetsToTxn, (short)0, (short)4), ((short)ApiKey.EndTxn, (short)0, (short)5),
                ((short)ApiKey.WriteTxnMarkers, (short)1, (short)2), ((short)ApiKey.TxnOffsetCommit, (short)0, (short)6),
                ((short)ApiKey.DescribeAcls, (short)1, (short)3), ((short)ApiKey.CreateAcls, (short)1, (short)3),
                ((short)ApiKey.DeleteAcls, (short)1, (short)3), ((short)ApiKey.DescribeConfigs, (short)1, (short)4),
                ((short)ApiKey.AlterConfigs, (short)0, (short)2), ((short)ApiKey.AlterReplicaLogDirs, (short)1, (short)2),
                ((short)ApiKey.DescribeLogDirs, (short)1, (short)5),
                ((short)ApiKey.CreatePartitions, (short)0, (short)3), ((short)ApiKey.DeleteGroups, (short)0, (short)3),
                ((short)ApiKey.ElectLeaders, (short)0, (short)2),
                ((short)ApiKey.IncrementalAlterConfigs, (short)0, (short)1), ((short)ApiKey.AlterPartitionReassignments, (short)0, (short)1),
                ((short)ApiKey.ListPartitionReassignments, (short)0, (short)0), ((short)ApiKey.OffsetDelete, (short)0, (short)0),
                ((short)ApiKey.DescribeClientQuotas, (short)0, (short)1),
                ((short)ApiKey.DescribeUserScramCredentials, (short)0, (short)0), ((short)ApiKey.AlterUserScramCredentials, (short)0, (short)0),
                ((short)ApiKey.DescribeQuorum, (short)0, (short)2),
                ((short)ApiKey.DescribeCluster, (short)0, (short)2), ((short)ApiKey.DescribeProducers, (short)0, (short)0),
                ((short)ApiKey.DescribeTransactions, (short)0, (short)0), ((short)ApiKey.ListTransactions, (short)0, (short)2),
                ((short)ApiKey.ConsumerGroupHeartbeat, (short)0, (short)1), ((short)ApiKey.ConsumerGroupDescribe, (short)0, (short)1),
                ((short)ApiKey.DescribeTopicPartitions, (short)0, (short)0),
            ],
            response.ApiKeys.Select(k => (k.ApiKey, k.MinVersion, k.MaxVersion)));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnUnsupportedApiVersionsVersionIsAnsweredInTheV0Shape()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        // ApiVersions v9 does not exist: the header is v2 (flexible) but the answer must be readable as v0.
        var frame = RawConnection.Frame(new ApiVersionsRequest(), 4, correlationId: 5);
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(6), 9);
        await connection.SendRawAsync(frame);
        var (correlation, response) = await connection.ReceiveAsync<ApiVersionsResponse>(0);
        Assert.Equal(5, correlation);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, response.ErrorCode);
        Assert.Contains(response.ApiKeys, k => k.ApiKey == (short)ApiKey.ApiVersions && k.MaxVersion == 4);
    }

    /// <summary>
    /// A request for an API the broker does not serve, or at a version it does not serve, is answered with
    /// UNSUPPORTED_VERSION where the response has a top-level error code (a dropped connection makes clients retry
    /// or hang); the connection stays usable. Only what cannot be answered in a form the client reads is closed.
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task RequestsTheBrokerDoesNotServeAreAnsweredWithAnError()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1, 1);
        var (correlation, handshake) = await connection.ReceiveAsync<SaslHandshakeResponse>(1);
        Assert.Equal((1, (short)ErrorCode.UnsupportedVersion), (correlation, handshake.ErrorCode));

        await connection.SendAsync(new CreateDelegationTokenRequest(), 3, 2);
        var (_, token) = await connection.ReceiveAsync<CreateDelegationTokenResponse>(3);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, token.ErrorCode);

        // UpdateFeatures: the top-level error code of a request that would change the cluster.
        await connection.SendAsync(new UpdateFeaturesRequest(), 1, 3);
        var (_, features) = await connection.ReceiveAsync<UpdateFeaturesResponse>(1);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, features.ErrorCode);

        // The connection still serves what it does.
        await connection.SendAsync(new MetadataRequest { Topics = [] }, 12, 4);
        Assert.Equal(4, (await connection.ReceiveAsync<MetadataResponse>(12)).CorrelationId);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task BadClientSoftwareNamesGetInvalidRequest()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new ApiVersionsRequest { ClientSoftwareName = "-bad name-", ClientSoftwareVersion = "1" }, 3, 1);
        var (_, response) = await connection.ReceiveAsync<ApiVersionsResponse>(3);
        Assert.Equal((short)ErrorCode.InvalidRequest, response.ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PipelinedRequestsAreAnsweredInOrder()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var frames = new List<byte>();
        for (var i = 0; i < 20; i++)
        {
            frames.AddRange(i % 2 == 0
                ? RawConnection.Frame(new MetadataRequest { Topics = [] }, 12, i)
                : RawConnection.Frame(new ApiVersionsRequest { ClientSoftwareName = "raw", ClientSoftwareVersion = "1" }, 3, i));
        }

        await connection.SendRawAsync([.. frames]); // all at once, in one write
        for (var i = 0; i < 20; i++)
        {
            var correlation = i % 2 == 0
                ? (await connection.ReceiveAsync<MetadataResponse>(12)).CorrelationId
                : (await connection.ReceiveAsync<ApiVersionsResponse>(3)).CorrelationId;
            Assert.Equal(i, correlation);
        }
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData("oversized")]
    [InlineData("negative-size")]
    [InlineData("unknown-api")]
    [InlineData("unsupported-version")]
    [InlineData("truncated-body")]
    public async Task AHostileFrameClosesThatConnectionOnly(string kind)
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("socket.request.max.bytes", "1024")) });
        using var good = await RawConnection.OpenAsync(broker.Server.Port);
        using var bad = await RawConnection.OpenAsync(broker.Server.Port);
        byte[] frame = kind switch
        {
            "oversized" => [0x00, 0x10, 0x00, 0x00, 1, 2, 3], // 1 MB declared, over the 1 KB limit
            "negative-size" => [0xFF, 0xFF, 0xFF, 0xFF],
            "unknown-api" => [0, 0, 0, 8, 0x7F, 0x00, 0, 0, 0, 0, 0, 1],
            "unsupported-version" => Patch(RawConnection.Frame(new MetadataRequest(), 12, 1), 6, 99),
            _ => [0, 0, 0, 10, 0, 3, 0, 12, 0, 0, 0, 1, 0, 5], // Metadata v12 cut short
        };
        await bad.SendRawAsync(frame);
        Assert.Null(await bad.ReceiveFrameAsync());

        await good.SendAsync(new MetadataRequest { Topics = [] }, 12, 42);
        Assert.Equal(42, (await good.ReceiveAsync<MetadataResponse>(12)).CorrelationId);
    }

    private static byte[] Patch(byte[] frame, int at, short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(at), value);
        return frame;
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ConfluentKafkaReadsTheClusterMetadata()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        var node = Assert.Single(metadata.Brokers);
        Assert.Equal(1, node.BrokerId);
        Assert.Equal("127.0.0.1", node.Host);
        Assert.Equal(broker.Server.Port, node.Port);
        Assert.StartsWith("2.16", Library.VersionString, StringComparison.Ordinal);
    }
}

public class MetadataTests
{
    public static TheoryData<short> Versions() => [.. Enumerable.Range(0, 14).Select(v => (short)v)];

    [Theory(Timeout = TestLimits.Timeout)]
    [MemberData(nameof(Versions))]
    public async Task MetadataAnswersAtEveryVersion(short version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        await connection.SendAsync(new MetadataRequest { Topics = version == 0 ? [] : null }, version, 3);
        var (correlation, response) = await connection.ReceiveAsync<MetadataResponse>(version);
        Assert.Equal(3, correlation);
        var node = Assert.Single(response.Brokers);
        Assert.Equal((1, "127.0.0.1", broker.Server.Port), (node.NodeId, node.Host, node.Port));
    }
}

public class ConnectionTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ManyRequestsOneAfterAnotherOnOneConnection()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        for (var i = 0; i < 5; i++)
        {
            await connection.SendAsync(new ApiVersionsRequest { ClientSoftwareName = "raw", ClientSoftwareVersion = "1" }, 3, i);
            Assert.Equal(i, (await connection.ReceiveAsync<ApiVersionsResponse>(3)).CorrelationId);
            await connection.SendAsync(new MetadataRequest { Topics = null }, 13, 100 + i);
            Assert.Equal(100 + i, (await connection.ReceiveAsync<MetadataResponse>(13)).CorrelationId);
        }
    }
}

public class ClientQuirkTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task LibrdkafkasFourByteNullTopicArrayIsReadAsKafkaReadsIt()
    {
        // Captured from librdkafka 2.16: Metadata v13 "all topics" with the null array written as 4 bytes
        // (librdkafka issue #5049). Kafka reads a null array and ignores the three bytes left over.
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var frame = Convert.FromHexString("000000190003000D00000003000772646B61666B610000000000010000");
        await connection.SendRawAsync(frame);
        var (correlation, response) = await connection.ReceiveAsync<MetadataResponse>(13);
        Assert.Equal(3, correlation);
        Assert.Single(response.Brokers);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AConnectionIdleForConnectionsMaxIdleMsIsClosedAndOthersStay()
    {
        var time = new Osprey.Storage.Tests.ManualTimeProvider();
        await using var broker = await TestBroker.StartAsync(o => o with { Time = time, Config = BrokerConfig.From(("connections.max.idle.ms", "1000")) });
        using var quiet = await RawConnection.OpenAsync(broker.Server.Port);
        using var busy = await RawConnection.OpenAsync(broker.Server.Port);
        await quiet.SendAsync(new ApiVersionsRequest(), 0, 1);
        await quiet.ReceiveAsync<ApiVersionsResponse>(0);
        await busy.SendAsync(new ApiVersionsRequest(), 0, 1);
        await busy.ReceiveAsync<ApiVersionsResponse>(0);

        // Both connections are waiting for their next request, each with its idle timer armed.
        await TestWait.UntilAsync(() => time.ActiveTimers >= 2);
        time.Advance(600);
        await busy.SendAsync(new ApiVersionsRequest(), 0, 2);
        Assert.Equal(2, (await busy.ReceiveAsync<ApiVersionsResponse>(0)).CorrelationId);
        await TestWait.UntilAsync(() => time.ActiveTimers >= 2);
        time.Advance(500); // quiet: 1100 ms idle; busy: 500 ms
        Assert.Null(await quiet.ReceiveFrameAsync());
        await busy.SendAsync(new ApiVersionsRequest(), 0, 3);
        Assert.Equal(3, (await busy.ReceiveAsync<ApiVersionsResponse>(0)).CorrelationId);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ShutdownLetsARequestInFlightFinishBeforeTheLogsClose()
    {
        // FindCoordinator creates __consumer_offsets (50 partitions): the broker stops while that is under way.
        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-broker-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new BrokerOptions { Listener = new IPEndPoint(IPAddress.Loopback, 0), DataDirectory = dataDir };
            var server = await BrokerServer.StartAsync(options, new TestOutputLoggerProvider(), TestContext.Current.CancellationToken);
            using (var connection = await RawConnection.OpenAsync(server.Port))
            {
                await connection.SendAsync(new MetadataRequest { Topics = [new() { Name = "quiet" }], AllowAutoTopicCreation = true }, 12, 1);
                await connection.ReceiveAsync<MetadataResponse>(12);

                // A long-polling fetch ahead of it: its answer is never written, so neither is FindCoordinator's.
                var fetch = new FetchRequest
                {
                    MaxWaitMs = 30_000,
                    MinBytes = 1,
                    Topics = [new() { Topic = "quiet", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
                };
                await connection.SendAsync(fetch, 11, 2);
                await connection.SendAsync(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g"] }, 4, 3);

                // The stop begins once the creation is under way (its first partition directory exists), so the
                // request is in flight when the broker stops: the stop must let it finish, all 50 partitions.
                await TestWait.UntilAsync(() => Directory.GetDirectories(dataDir, "__consumer_offsets-*").Length > 0);
                await server.DisposeAsync();
            }

            Assert.Equal(50, Directory.GetDirectories(dataDir, "__consumer_offsets-*").Length);
            Assert.Empty(Directory.GetFiles(dataDir, "*.tmp", SearchOption.AllDirectories));

            // Nothing writes into the directory any more, and the broker starts again on it, with the whole topic.
            await using var again = await BrokerServer.StartAsync(options, new TestOutputLoggerProvider(), TestContext.Current.CancellationToken);
            Assert.Equal(50, again.Services.GetRequiredService<Osprey.Metadata.MetadataLog>().Image.Topic("__consumer_offsets")?.Partitions.Count);
            Assert.True(again.Logs.WasCleanShutdown);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
