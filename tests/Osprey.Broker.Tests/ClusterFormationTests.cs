using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;
using Osprey.Metadata;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

/// <summary>
/// N brokers in one process, each a voter of the metadata quorum over its CONTROLLER listener (ports taken in
/// advance, since the voters name them), with short Raft and session timeouts. Disposing a node stands in for it
/// stopping.
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "osprey-cluster-test-" + Guid.NewGuid().ToString("N"));

    private TestCluster(IReadOnlyList<QuorumVoter> voters)
    {
        Voters = voters;
        Nodes = new BrokerServer?[voters.Count + 1];
    }

    public IReadOnlyList<QuorumVoter> Voters { get; }

    public bool ReplicaFetchers { get; private init; } = true;

    /// <summary>Settings every node gets on top of the cluster's short timeouts.</summary>
    public IReadOnlyList<(string Name, string Value)> Settings { get; private init; } = [];

    /// <summary>By node id (index 0 unused); null while a node is stopped.</summary>
    public BrokerServer?[] Nodes { get; }

    public IEnumerable<BrokerServer> Running => Nodes.OfType<BrokerServer>();

    /// <summary>
    /// Starts <paramref name="nodes"/> nodes. With <paramref name="replicaFetchers"/> false no follower fetches from
    /// its leaders: a test then plays the followers itself, with raw replica fetches.
    /// </summary>
    public static async Task<TestCluster> StartAsync(int nodes = 3, bool replicaFetchers = true, params (string Name, string Value)[] settings)
    {
        var cluster = new TestCluster([.. Enumerable.Range(1, nodes).Select(id => new QuorumVoter(id, "127.0.0.1", FreePort()))]) { ReplicaFetchers = replicaFetchers, Settings = settings };
        await Task.WhenAll(Enumerable.Range(1, nodes).Select(cluster.StartNodeAsync));
        return cluster;
    }

    public string DataDirectory(int id) => Path.Combine(_root, $"node-{id}");

    public BrokerOptions Options(int id) => new()
    {
        NodeId = id,
        Listener = new IPEndPoint(IPAddress.Loopback, 0),
        DataDirectory = DataDirectory(id),
        Voters = Voters,
        ControllerListener = new IPEndPoint(IPAddress.Loopback, Voters[id - 1].Port),
        ControllerListenerName = "CONTROLLER",
        ReplicaFetchers = ReplicaFetchers,
        Config = BrokerConfig.From([
            ("controller.quorum.election.timeout.ms", "300"),
            ("controller.quorum.request.timeout.ms", "300"),
            ("broker.heartbeat.interval.ms", "200"),
            ("broker.session.timeout.ms", "2000"),
            ("replica.fetch.backoff.ms", "200"),
            .. Settings]),
    };

    public async Task StartNodeAsync(int id)
    {
        Nodes[id] = await BrokerServer.StartAsync(Options(id), new TestOutputLoggerProvider(), TestContext.Current.CancellationToken);
    }

    public async Task StopNodeAsync(int id)
    {
        if (Nodes[id] is { } node)
        {
            Nodes[id] = null;
            await node.DisposeAsync();
        }
    }

    public static IMetadataQuorum Quorum(BrokerServer node) => node.Services.GetRequiredService<IMetadataQuorum>();

    /// <summary>The node that is the active controller, once the running nodes agree on one.</summary>
    public async Task<BrokerServer> ActiveControllerAsync()
    {
        await TestWait.UntilAsync(() => Running.Count(n => Quorum(n).IsActiveController) == 1
            && Running.All(n => Quorum(n).ActiveControllerId == Running.Single(a => Quorum(a).IsActiveController).Options.NodeId));
        return Running.Single(n => Quorum(n).IsActiveController);
    }

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>
    /// A port to name in the voters before the node binds it: below Linux's ephemeral range (32768 up), so that no
    /// outgoing connection is given it meanwhile, never the same twice in this process, and bindable right now.
    /// </summary>
    internal static int FreePort()
    {
        while (true)
        {
            int port;
            lock (HandedOut)
            {
                port = Random.Shared.Next(20_000, 32_000);
                if (!HandedOut.Add(port))
                {
                    continue;
                }
            }

            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // In use by something else: try another.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        for (var id = 1; id < Nodes.Length; id++)
        {
            await StopNodeAsync(id);
        }

        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}

/// <summary>
/// Nodes that name each other as voters form one cluster: one cluster id (recorded by the quorum's first leader,
/// adopted by every data directory), every broker registered and unfenced in every node's metadata, and clients told
/// of all brokers and of the active controller by whichever node they ask. A stopped node is fenced once its session
/// runs out, another node takes over as controller, and the node registers again when it comes back. A data
/// directory of another cluster is refused.
/// </summary>
public class ClusterFormationTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ThreeNodesFormOneClusterThatClientsSeeWhole()
    {
        await using var cluster = await TestCluster.StartAsync();
        var clusterId = cluster.Nodes[1]!.Identity.ClusterId;
        Assert.Matches("^[A-Za-z0-9_-]{22}$", clusterId);
        foreach (var node in cluster.Running)
        {
            Assert.Equal(clusterId, node.Identity.ClusterId);
            Assert.Contains($"cluster.id={clusterId}", File.ReadAllLines(Path.Combine(node.Options.DataDirectory, "meta.properties")));
        }

        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == 3));
        var controller = await cluster.ActiveControllerAsync();
        foreach (var node in cluster.Running)
        {
            using var connection = await RawConnection.OpenAsync(node.Port);
            await connection.SendAsync(new MetadataRequest { Topics = [] }, 12, 1);
            var (_, metadata) = await connection.ReceiveAsync<MetadataResponse>(12);
            Assert.Equal([1, 2, 3], metadata.Brokers.Select(b => b.NodeId).Order());
            Assert.Equal(cluster.Running.Select(n => n.Port).Order(), metadata.Brokers.Select(b => b.Port).Order());
            Assert.Equal((clusterId, controller.Options.NodeId), (metadata.ClusterId, metadata.ControllerId));
        }

        // DescribeQuorum through a broker that is not the leader is relayed from the leader; the voters catch up
        // with its high watermark. A non-leader's CONTROLLER listener says it is not the leader.
        var follower = cluster.Running.First(n => n != controller);
        var quorumRequest = new DescribeQuorumRequest { Topics = [new() { TopicName = MetadataLog.Topic, Partitions = [new() { PartitionIndex = 0 }] }] };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var quorum = await DescribeQuorumAsync(follower.Port, quorumRequest).WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        while (quorum.CurrentVoters.Any(v => v.LogEndOffset != quorum.HighWatermark))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the voters never caught up: HW {quorum.HighWatermark}, {string.Join(", ", quorum.CurrentVoters.Select(v => $"{v.ReplicaId}@{v.LogEndOffset}"))}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
            quorum = await DescribeQuorumAsync(follower.Port, quorumRequest).WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        }

        Assert.Equal(controller.Options.NodeId, quorum.LeaderId);
        Assert.Equal(TestCluster.Quorum(controller).EndOffset, quorum.HighWatermark);
        Assert.True(quorum.LeaderEpoch >= 1);
        Assert.Equal([1, 2, 3], quorum.CurrentVoters.Select(v => v.ReplicaId).Order());
        var notLeader = await DescribeQuorumAsync(follower.ControllerPort!.Value, quorumRequest);
        Assert.Equal(Protocol.ErrorCode.NotLeaderOrFollower, (Protocol.ErrorCode)notLeader.ErrorCode);

        // A topic created through the controller is in every node's metadata; its partitions have logs only on the
        // brokers that hold their replicas.
        using (var connection = await RawConnection.OpenAsync(controller.Port))
        {
            await connection.SendAsync(new CreateTopicsRequest { Topics = [new() { Name = "placed", NumPartitions = 2, ReplicationFactor = 1 }], TimeoutMs = 30_000 }, 7, 2);
            var (_, created) = await connection.ReceiveAsync<CreateTopicsResponse>(7);
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Topic("placed") is { } t
            && t.Partitions.Values.All(p => !p.Replicas.Contains(n.Options.NodeId) || n.Logs.Get("placed", p.PartitionId) is not null)));
        foreach (var node in cluster.Running)
        {
            var partitions = TestCluster.Quorum(node).Image.Topic("placed")!.Partitions.Values;
            foreach (var partition in partitions)
            {
                Assert.Equal(partition.Replicas.Contains(node.Options.NodeId), node.Logs.Get("placed", partition.PartitionId) is not null);
            }
        }
    }

    private static async Task<DescribeQuorumResponse.PartitionData> DescribeQuorumAsync(int port, DescribeQuorumRequest request)
    {
        using var connection = await RawConnection.OpenAsync(port);
        await connection.SendAsync(request, 2, 1);
        var (_, response) = await connection.ReceiveAsync<DescribeQuorumResponse>(2);
        Assert.Equal(0, response.ErrorCode);
        return response.Topics.Single().Partitions.Single();
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStoppedNodeIsFencedAnotherLeadsAndItRegistersAgainWhenBack()
    {
        await using var cluster = await TestCluster.StartAsync();
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == 3));
        var first = (await cluster.ActiveControllerAsync()).Options.NodeId;
        var epoch = TestCluster.Quorum(cluster.Nodes[first]!).Image.Brokers[first].Epoch;

        await cluster.StopNodeAsync(first);
        var second = await cluster.ActiveControllerAsync();
        Assert.NotEqual(first, second.Options.NodeId);

        // The new controller gives the stopped broker a full session, then fences it.
        await TestWait.UntilAsync(() => TestCluster.Quorum(second).Image.Brokers[first].Fenced);
        using (var connection = await RawConnection.OpenAsync(second.Port))
        {
            await connection.SendAsync(new MetadataRequest { Topics = [] }, 12, 1);
            var (_, metadata) = await connection.ReceiveAsync<MetadataResponse>(12);
            Assert.DoesNotContain(first, metadata.Brokers.Select(b => b.NodeId));
            Assert.Equal(2, metadata.Brokers.Count);
        }

        await cluster.StartNodeAsync(first);
        await TestWait.UntilAsync(() => cluster.Running.All(n => TestCluster.Quorum(n).Image.Brokers.Values.Count(b => !b.Fenced) == 3));
        Assert.True(TestCluster.Quorum(second).Image.Brokers[first].Epoch > epoch);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ADataDirectoryOfAnotherClusterIsRefused()
    {
        await using var cluster = await TestCluster.StartAsync();
        var clusterId = cluster.Nodes[3]!.Identity.ClusterId;
        await cluster.StopNodeAsync(3);
        var meta = Path.Combine(cluster.DataDirectory(3), "meta.properties");
        var stranger = MetaProperties.NewKafkaUuid();
        File.WriteAllLines(meta, File.ReadAllLines(meta).Select(l => l.StartsWith("cluster.id=", StringComparison.Ordinal) ? "cluster.id=" + stranger : l));

        var e = await Assert.ThrowsAsync<DataDirectoryMismatchException>(() => cluster.StartNodeAsync(3));
        Assert.Contains($"belongs to cluster {stranger}", e.Message, StringComparison.Ordinal);
        Assert.Contains($"is cluster {clusterId}", e.Message, StringComparison.Ordinal);
    }
}
