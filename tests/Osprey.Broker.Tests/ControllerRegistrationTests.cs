using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

/// <summary>
/// A node's broker registers with its controller and heartbeats to it; the brokers clients are told of come from the
/// metadata image: registered and unfenced. With a CONTROLLER listener the broker does this over Kafka's protocol,
/// and the listener serves the controller's APIs only.
/// </summary>
public class ControllerRegistrationTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStartedNodeIsOneUnfencedBrokerOfItsOwnMetadataAndARestartRegistersItAnew()
    {
        var broker = await TestBroker.StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        var first = Broker(broker, 1);
        Assert.False(first.Fenced);
        Assert.Equal(("PLAINTEXT", "127.0.0.1", broker.Server.Port), (first.Endpoints.Single().Name, first.Endpoints.Single().Host, (int)first.Endpoints.Single().Port));
        Assert.Single(Image(broker).Brokers);
        var brokers = await MetadataBrokersAsync(broker.Server.Port);
        Assert.Equal([(1, "127.0.0.1", broker.Server.Port)], brokers);

        // A restart is a new incarnation with a new epoch, registered at once (the old registration belonged to the
        // process that stopped); still one broker, unfenced.
        await broker.Server.DisposeAsync();
        await using var again = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir });
        var second = Broker(again, 1);
        Assert.False(second.Fenced);
        Assert.NotEqual(first.IncarnationId, second.IncarnationId);
        Assert.True(second.Epoch > first.Epoch);
        Assert.Single(Image(again).Brokers);
        Assert.Equal([(1, "127.0.0.1", again.Server.Port)], await MetadataBrokersAsync(again.Server.Port));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task OverAControllerListenerTheBrokerRegistersAndTheListenerServesTheControllersApis()
    {
        await using var broker = await StartWithControllerListenerAsync(rack: "rack-7");
        var registered = Broker(broker, 1);
        Assert.Equal((false, "rack-7"), (registered.Fenced, registered.Rack));

        using var controller = await RawConnection.OpenAsync(broker.Server.ControllerPort!.Value);
        await controller.SendAsync(new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 3, 1);
        var (_, versions) = await controller.ReceiveAsync<ApiVersionsResponse>(3);
        Assert.Equal(
            [ApiKey.ApiVersions, ApiKey.CreateTopics, ApiKey.DeleteTopics, ApiKey.AlterConfigs, ApiKey.CreatePartitions, ApiKey.ElectLeaders, ApiKey.IncrementalAlterConfigs,
                ApiKey.AlterUserScramCredentials, ApiKey.DescribeQuorum, ApiKey.AlterPartition, ApiKey.DescribeCluster, ApiKey.BrokerRegistration, ApiKey.BrokerHeartbeat,
                ApiKey.AllocateProducerIds],
            versions.ApiKeys.Select(k => (ApiKey)k.ApiKey).ToArray());

        // The client listener does not offer the controller's APIs.
        using var client = await RawConnection.OpenAsync(broker.Server.Port);
        await client.SendAsync(new ApiVersionsRequest { ClientSoftwareName = "test", ClientSoftwareVersion = "1" }, 3, 1);
        var (_, clientVersions) = await client.ReceiveAsync<ApiVersionsResponse>(3);
        Assert.DoesNotContain(clientVersions.ApiKeys, k => k.ApiKey is (short)ApiKey.BrokerRegistration or (short)ApiKey.BrokerHeartbeat or (short)ApiKey.AllocateProducerIds or (short)ApiKey.AlterPartition);
        Assert.Contains(clientVersions.ApiKeys, k => k.ApiKey == (short)ApiKey.Produce);

        // DescribeQuorum names the controller listener as the voter's endpoint.
        await controller.SendAsync(new DescribeQuorumRequest { Topics = [new() { TopicName = MetadataLog.Topic, Partitions = [new() { PartitionIndex = 0 }] }] }, 2, 2);
        var (_, quorum) = await controller.ReceiveAsync<DescribeQuorumResponse>(2);
        var listener = quorum.Nodes.Single().Listeners.Single();
        Assert.Equal(("CONTROLLER", broker.Server.ControllerPort.Value), (listener.Name, (int)listener.Port));

        // DescribeCluster there names the controllers (KIP-919: what an admin client with bootstrap.controllers
        // asks); asked for brokers, it says the endpoint type does not match, as the client listener does for
        // controllers.
        await controller.SendAsync(new DescribeClusterRequest { EndpointType = 2 }, 1, 3);
        var (_, controllers) = await controller.ReceiveAsync<DescribeClusterResponse>(1);
        Assert.Equal((2, 1), (controllers.EndpointType, controllers.ControllerId));
        Assert.Equal([(1, "127.0.0.1", broker.Server.ControllerPort.Value)], controllers.Brokers.Select(b => (b.BrokerId, b.Host, b.Port)));
        await controller.SendAsync(new DescribeClusterRequest { EndpointType = 1 }, 1, 4);
        Assert.Equal(ErrorCode.MismatchedEndpointType, (ErrorCode)(await controller.ReceiveAsync<DescribeClusterResponse>(1)).Body.ErrorCode);
        await client.SendAsync(new DescribeClusterRequest { EndpointType = 2 }, 1, 2);
        Assert.Equal(ErrorCode.MismatchedEndpointType, (ErrorCode)(await client.ReceiveAsync<DescribeClusterResponse>(1)).Body.ErrorCode);
    }

    /// <summary>
    /// A second broker registers over the CONTROLLER listener and heartbeats: clients are told of it once it is
    /// unfenced, and no longer once its session runs out without heartbeats (DescribeCluster v2 still lists it, fenced,
    /// when asked). A registration from another cluster, or for a broker id whose session is live, is refused.
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ABrokerIsListedWhileItHeartbeatsAndFencedWhenItStops()
    {
        await using var broker = await StartWithControllerListenerAsync(sessionTimeoutMs: 1_500);
        using var controller = await RawConnection.OpenAsync(broker.Server.ControllerPort!.Value);
        var clusterId = broker.Server.Identity.ClusterId;

        var stranger = await RegisterAsync(controller, 2, "not-this-cluster", 1);
        Assert.Equal(ErrorCode.InconsistentClusterId, (ErrorCode)stranger.ErrorCode);
        var duplicate = await RegisterAsync(controller, 1, clusterId, 2);
        Assert.Equal(ErrorCode.DuplicateBrokerRegistration, (ErrorCode)duplicate.ErrorCode);

        var registered = await RegisterAsync(controller, 2, clusterId, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)registered.ErrorCode);
        Assert.True(Broker(broker, 2).Fenced);
        Assert.Equal([1], (await MetadataBrokersAsync(broker.Server.Port)).Select(b => b.Id));

        var heartbeat = await HeartbeatAsync(controller, 2, registered.BrokerEpoch, Image(broker).LastOffset, 4);
        Assert.Equal((ErrorCode.None, true, false), ((ErrorCode)heartbeat.ErrorCode, heartbeat.IsCaughtUp, heartbeat.IsFenced));
        Assert.Equal([(1, "127.0.0.1", broker.Server.Port), (2, "127.0.0.1", 29092)], await MetadataBrokersAsync(broker.Server.Port));

        // No more heartbeats from broker 2: fenced once its session has run out, while broker 1 heartbeats on.
        await TestWait.UntilAsync(() => Broker(broker, 2).Fenced);
        Assert.False(Broker(broker, 1).Fenced);
        Assert.Equal([1], (await MetadataBrokersAsync(broker.Server.Port)).Select(b => b.Id));
        using (var client = await RawConnection.OpenAsync(broker.Server.Port))
        {
            await client.SendAsync(new DescribeClusterRequest { IncludeFencedBrokers = true }, 2, 5);
            var (_, cluster) = await client.ReceiveAsync<DescribeClusterResponse>(2);
            Assert.Equal([(1, false), (2, true)], cluster.Brokers.Select(b => (b.BrokerId, b.IsFenced)));
            Assert.Equal((1, clusterId), (cluster.ControllerId, cluster.ClusterId));
        }

        // Its next heartbeat unfences it again; one with an old epoch is STALE_BROKER_EPOCH.
        var back = await HeartbeatAsync(controller, 2, registered.BrokerEpoch, Image(broker).LastOffset, 6);
        Assert.False(back.IsFenced);
        var stale = await HeartbeatAsync(controller, 2, registered.BrokerEpoch - 1, Image(broker).LastOffset, 7);
        Assert.Equal(ErrorCode.StaleBrokerEpoch, (ErrorCode)stale.ErrorCode);
    }

    private static async Task<TestBroker> StartWithControllerListenerAsync(string? rack = null, int sessionTimeoutMs = 9_000)
    {
        var settings = new List<(string, string)>
        {
            ("controller.listener.names", "CONTROLLER"),
            ("broker.session.timeout.ms", sessionTimeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("broker.heartbeat.interval.ms", Math.Min(2_000, sessionTimeoutMs / 5).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        };
        return await TestBroker.StartAsync(o => o with
        {
            Config = BrokerConfig.From([.. settings]),
            ControllerListener = new IPEndPoint(IPAddress.Loopback, 0),
            ControllerListenerName = "CONTROLLER",
            Rack = rack,
        });
    }

    private static ClusterImage Image(TestBroker broker) => broker.Server.Services.GetRequiredService<IMetadataQuorum>().Image;

    private static BrokerImage Broker(TestBroker broker, int id) => Image(broker).Brokers[id];

    private static async Task<List<(int Id, string Host, int Port)>> MetadataBrokersAsync(int port)
    {
        using var connection = await RawConnection.OpenAsync(port);
        await connection.SendAsync(new MetadataRequest { Topics = [] }, 12, 1);
        var (_, metadata) = await connection.ReceiveAsync<MetadataResponse>(12);
        return [.. metadata.Brokers.Select(b => (b.NodeId, b.Host, b.Port))];
    }

    private static async Task<BrokerRegistrationResponse> RegisterAsync(RawConnection controller, int id, string clusterId, int correlationId)
    {
        await controller.SendAsync(
            new BrokerRegistrationRequest
            {
                BrokerId = id,
                ClusterId = clusterId,
                IncarnationId = Guid.NewGuid(),
                Listeners = [new() { Name = "PLAINTEXT", Host = "127.0.0.1", Port = 29092 }],
                Features = [new() { Name = "metadata.version", MinSupportedVersion = 7, MaxSupportedVersion = 25 }],
                Rack = null,
            },
            4,
            correlationId);
        return (await controller.ReceiveAsync<BrokerRegistrationResponse>(4)).Body;
    }

    private static async Task<BrokerHeartbeatResponse> HeartbeatAsync(RawConnection controller, int id, long epoch, long offset, int correlationId)
    {
        await controller.SendAsync(new BrokerHeartbeatRequest { BrokerId = id, BrokerEpoch = epoch, CurrentMetadataOffset = offset }, 2, correlationId);
        return (await controller.ReceiveAsync<BrokerHeartbeatResponse>(2)).Body;
    }
}
