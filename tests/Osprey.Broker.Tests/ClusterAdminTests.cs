using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

/// <summary>
/// Admin requests that change metadata may reach any node of a cluster: a node that is not the active controller
/// forwards them, and answers once its own metadata shows the change. Replicas are placed over the registered
/// brokers, producer ids come in blocks from the controller, and a voter that is not the controller refuses such
/// requests on its CONTROLLER listener with NOT_CONTROLLER.
/// </summary>
public class ClusterAdminTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AdminRequestsToANodeThatIsNotTheControllerAreForwardedToIt()
    {
        await using var cluster = await TestCluster.StartAsync();
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == 3));
        var controller = await cluster.ActiveControllerAsync();
        var follower = cluster.Running.First(n => n != controller);
        var followerImage = () => TestCluster.Quorum(follower).Image;
        using var connection = await RawConnection.OpenAsync(follower.Port);
        var correlation = 1;

        async Task<T> Ask<T>(IApiMessage request, short version)
            where T : IApiMessage, new()
        {
            await connection.SendAsync(request, version, ++correlation);
            var (id, body) = await connection.ReceiveAsync<T>(version);
            Assert.Equal(correlation, id);
            return body;
        }

        // An RF=3 topic: every partition on all three brokers, leaders spread one per broker, and the answering node
        // already knows it.
        var created = await Ask<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "replicated", NumPartitions = 3, ReplicationFactor = 3 }], TimeoutMs = 30_000 }, 7);
        Assert.Equal((ErrorCode.None, 3, (short)3), ((ErrorCode)created.Topics.Single().ErrorCode, created.Topics.Single().NumPartitions, created.Topics.Single().ReplicationFactor));
        var topic = followerImage().Topic("replicated");
        Assert.NotNull(topic);
        Assert.All(topic.Partitions.Values, p => Assert.Equal([1, 2, 3], p.Replicas.Order()));
        Assert.All(topic.Partitions.Values, p => Assert.Equal(p.Replicas, p.Isr));
        Assert.Equal([1, 2, 3], topic.Partitions.Values.Select(p => p.Leader).Order());
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic("replicated") is { } t
            && t.Partitions.Values.Select(p => string.Join(",", p.Replicas)).SequenceEqual(topic.Partitions.Values.Select(p => string.Join(",", p.Replicas)))));
        Assert.All(cluster.Running, n => Assert.Equal(3, Enumerable.Range(0, 3).Count(p => n.Logs.Get("replicated", p) is not null)));

        // More replicas than brokers, and a manual assignment naming an unknown broker, are refused in Kafka's words.
        var tooMany = await Ask<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "too-many", NumPartitions = 1, ReplicationFactor = 4 }], TimeoutMs = 30_000 }, 7);
        Assert.Equal(ErrorCode.InvalidReplicationFactor, (ErrorCode)tooMany.Topics.Single().ErrorCode);
        Assert.Contains("only 3 broker(s) are registered", tooMany.Topics.Single().ErrorMessage, StringComparison.Ordinal);
        var unknownBroker = await Ask<CreateTopicsResponse>(
            new CreateTopicsRequest
            {
                Topics = [new() { Name = "manual", NumPartitions = -1, ReplicationFactor = -1, Assignments = [new() { PartitionIndex = 0, BrokerIds = [1, 9] }] }],
                TimeoutMs = 30_000,
            },
            7);
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, (ErrorCode)unknownBroker.Topics.Single().ErrorCode);
        Assert.Null(followerImage().Topic("too-many") ?? followerImage().Topic("manual"));

        // New partitions keep the topic's replication factor.
        var grown = await Ask<CreatePartitionsResponse>(new CreatePartitionsRequest { Topics = [new() { Name = "replicated", Count = 5, Assignments = null }], TimeoutMs = 30_000 }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)grown.Results.Single().ErrorCode);
        Assert.Equal(5, followerImage().Topic("replicated")!.Partitions.Count);
        Assert.All(followerImage().Topic("replicated")!.Partitions.Values, p => Assert.Equal(3, p.Replicas.Length));

        // A topic config goes through the controller; a broker config addressed to another broker is refused by the
        // broker that received it.
        var altered = await Ask<IncrementalAlterConfigsResponse>(
            new IncrementalAlterConfigsRequest
            {
                Resources =
                [
                    new() { ResourceType = ClusterImage.TopicResource, ResourceName = "replicated", Configs = [new() { Name = "retention.ms", ConfigOperation = 0, Value = "3600000" }] },
                    new() { ResourceType = ClusterImage.BrokerResource, ResourceName = controller.Options.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture), Configs = [new() { Name = "log.retention.ms", ConfigOperation = 0, Value = "3600000" }] },
                ],
            },
            1);
        Assert.Equal(ErrorCode.None, (ErrorCode)altered.Responses[0].ErrorCode);
        Assert.Equal(ErrorCode.InvalidRequest, (ErrorCode)altered.Responses[1].ErrorCode);
        Assert.Contains($"expected {follower.Options.NodeId}", altered.Responses[1].ErrorMessage, StringComparison.Ordinal);
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic("replicated")!.Configs.GetValueOrDefault("retention.ms") == "3600000"));

        // Producer ids come in blocks from the controller: no two brokers hand out the same id.
        var fromFollower = await Ask<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1 }, 4);
        using (var direct = await RawConnection.OpenAsync(controller.Port))
        {
            await direct.SendAsync(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1 }, 4, 1);
            var (_, fromController) = await direct.ReceiveAsync<InitProducerIdResponse>(4);
            Assert.Equal((ErrorCode.None, ErrorCode.None), ((ErrorCode)fromFollower.ErrorCode, (ErrorCode)fromController.ErrorCode));
            Assert.NotEqual(fromFollower.ProducerId, fromController.ProducerId);
            Assert.NotEqual(fromFollower.ProducerId / 1000, fromController.ProducerId / 1000);
        }

        // A voter that is not the controller refuses on its CONTROLLER listener instead of forwarding.
        using (var controllerPort = await RawConnection.OpenAsync(follower.ControllerPort!.Value))
        {
            await controllerPort.SendAsync(new CreateTopicsRequest { Topics = [new() { Name = "refused", NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 30_000 }, 7, 1);
            var (_, refused) = await controllerPort.ReceiveAsync<CreateTopicsResponse>(7);
            Assert.Equal(ErrorCode.NotController, (ErrorCode)refused.Topics.Single().ErrorCode);
        }

        // Deleted through the follower: gone from its metadata when it answers, and its logs with it.
        var deleted = await Ask<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["replicated"], TimeoutMs = 30_000 }, 5);
        Assert.Equal(ErrorCode.None, (ErrorCode)deleted.Responses.Single().ErrorCode);
        Assert.Null(followerImage().Topic("replicated"));
        Assert.Null(follower.Logs.Get("replicated", 0));
        Assert.Null(followerImage().Topic("refused"));
    }
}
