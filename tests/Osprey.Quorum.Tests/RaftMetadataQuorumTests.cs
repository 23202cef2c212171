using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Osprey.Metadata;
using Osprey.Protocol.Messages;

namespace Osprey.Quorum.Tests;

/// <summary>
/// Three voters of the metadata quorum in one process, on loopback TCP with short election timeouts (real time:
/// DotNext's timers take no TimeProvider). Writes go through the leader and reach every voter in the same order;
/// a stopped leader is replaced without losing what was committed; a restart recovers from the log and snapshots; a
/// damaged snapshot stops the start.
/// </summary>
public sealed class RaftMetadataQuorumTests : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "osprey-quorum-test-" + Guid.NewGuid().ToString("N"));
    private readonly List<QuorumVoter> _voters;
    private readonly Dictionary<int, RaftMetadataQuorum> _nodes = [];
    private readonly Dictionary<int, WebApplication> _hosts = [];
    private readonly Dictionary<int, ControllerPortTransport> _transports = [];
    private readonly Dictionary<int, string> _proposed = [];
    private bool _controllerPort;

    public RaftMetadataQuorumTests()
    {
        _voters = [.. Enumerable.Range(1, 3).Select(id => new QuorumVoter(id, "127.0.0.1", FreePort()))];
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ThreeVotersElectALeaderAndEveryWriteReachesEachInOrder(bool controllerPort)
    {
        _controllerPort = controllerPort;
        var seen = new Dictionary<int, List<string>>();
        foreach (var voter in _voters)
        {
            var node = await StartAsync(voter.Id);
            var names = seen[voter.Id] = [];
            node.AddPublisher(new Recorder(names));
        }

        var leader = await LeaderAsync();
        var follower = _nodes.Values.First(n => n != leader);
        var refused = await Assert.ThrowsAsync<NotControllerException>(() => follower.AppendAsync([Topic("refused")], TestContext.Current.CancellationToken));
        Assert.Equal(leader.NodeId, refused.LeaderId);

        for (var i = 0; i < 5; i++)
        {
            var image = await leader.AppendAsync([Topic($"t{i}"), Partition($"t{i}", 0)], TestContext.Current.CancellationToken);
            Assert.NotNull(image.Topic($"t{i}"));
            Assert.Equal(2 * i + 2, image.LastOffset); // after the cluster identity record at 0
        }

        // The writer's own node has published every change by the time the write returned.
        Assert.Equal(["t0", "t1", "t2", "t3", "t4"], seen[leader.NodeId]);
        await TestWait.UntilAsync(() => _nodes.Values.All(n => n.Image.LastOffset == 10 && Count(seen[n.NodeId]) == 5));
        foreach (var node in _nodes.Values)
        {
            Assert.Equal(["t0", "t1", "t2", "t3", "t4"], node.Image.Topics.Keys);
            lock (seen[node.NodeId])
            {
                Assert.Equal(["t0", "t1", "t2", "t3", "t4"], seen[node.NodeId]);
            }

            Assert.Equal(leader.Image.Topic("t3")!.TopicId, node.Image.Topic("t3")!.TopicId);
        }

        static int Count(List<string> names)
        {
            lock (names)
            {
                return names.Count;
            }
        }
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WhenTheLeaderStopsAnotherTakesOverWithEveryCommittedWrite(bool controllerPort)
    {
        _controllerPort = controllerPort;
        foreach (var voter in _voters)
        {
            await StartAsync(voter.Id);
        }

        var first = await LeaderAsync();
        await first.AppendAsync([Topic("before")], TestContext.Current.CancellationToken);
        var term = first.Term;
        var stopped = first.NodeId;
        await StopAsync(stopped);

        var second = await LeaderAsync();
        Assert.NotEqual(stopped, second.NodeId);
        Assert.True(second.Term > term);
        Assert.NotNull(second.Image.Topic("before"));
        var image = await second.AppendAsync([Topic("after")], TestContext.Current.CancellationToken);
        Assert.Equal(2, image.LastOffset); // metadata offsets go on where the old leader stopped

        // The old leader comes back from its disk and catches up as a follower.
        var back = await StartAsync(stopped);
        await TestWait.UntilAsync(() => back.Image.LastOffset == 2);
        Assert.Equal(["after", "before"], back.Image.Topics.Keys);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ARestartRecoversTheImageFromSnapshotsAndTheLogAndADamagedSnapshotStopsIt()
    {
        foreach (var voter in _voters)
        {
            await StartAsync(voter.Id, snapshotBytes: 1); // a snapshot after every entry
        }

        var leader = await LeaderAsync();
        for (var i = 0; i < 12; i++)
        {
            await leader.AppendAsync([Topic($"t{i:D2}"), Partition($"t{i:D2}", 0), Partition($"t{i:D2}", 1)], TestContext.Current.CancellationToken);
        }

        await TestWait.UntilAsync(() => _nodes.Values.All(n => n.Image.LastOffset == 36));
        var expected = MetadataSnapshot.Write(leader.Image);
        foreach (var node in _nodes.Values.ToList())
        {
            await node.DisposeAsync();
        }

        _nodes.Clear();
        foreach (var voter in _voters)
        {
            var restarted = await StartAsync(voter.Id);
            Assert.Equal(36, restarted.Image.LastOffset);
            Assert.Equal(expected, MetadataSnapshot.Write(restarted.Image));
        }

        // One node's newest snapshot is damaged: that node refuses to start, naming the file.
        var victim = _nodes[2];
        await victim.DisposeAsync();
        _nodes.Remove(2);
        var snapshots = Directory.GetFiles(Path.Combine(_root, "node-2", "snapshots"), "*", SearchOption.AllDirectories)
            .Select(f => new FileInfo(f)).Where(f => f.Length > 0).OrderBy(f => f.LastWriteTimeUtc).ToList();
        Assert.NotEmpty(snapshots);
        var newest = snapshots[^1];
        var bytes = await File.ReadAllBytesAsync(newest.FullName, TestContext.Current.CancellationToken);
        bytes[bytes.Length / 2] ^= 0x5A;
        await File.WriteAllBytesAsync(newest.FullName, bytes, TestContext.Current.CancellationToken);
        var e = await Assert.ThrowsAsync<CorruptMetadataException>(() => StartAsync(2));
        Assert.Contains(newest.Name, e.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ADamagedLogEntryStopsTheStartWithAClearMessage()
    {
        foreach (var voter in _voters)
        {
            await StartAsync(voter.Id);
        }

        var leader = await LeaderAsync();
        for (var i = 0; i < 5; i++)
        {
            await leader.AppendAsync([Topic($"t{i}")], TestContext.Current.CancellationToken);
        }

        await TestWait.UntilAsync(() => _nodes.Values.All(n => n.Image.LastOffset == 5));
        var victim = _nodes[1];
        await victim.DisposeAsync();
        _nodes.Remove(1);
        var damaged = 0;
        foreach (var file in Directory.GetFiles(Path.Combine(_root, "node-1", "log"), "*", SearchOption.AllDirectories).Select(f => new FileInfo(f)))
        {
            var bytes = await File.ReadAllBytesAsync(file.FullName, TestContext.Current.CancellationToken);
            var topic = System.Text.Encoding.UTF8.GetBytes("t3");
            var at = bytes.AsSpan().IndexOf(topic);
            if (at >= 0)
            {
                bytes[at] ^= 0x01; // "t3" becomes "u3" inside the entry: a bit flip on disk
                await File.WriteAllBytesAsync(file.FullName, bytes, TestContext.Current.CancellationToken);
                damaged++;
            }
        }

        Assert.Equal(1, damaged);
        var e = await Assert.ThrowsAsync<CorruptMetadataException>(() => StartAsync(1));
        Assert.Contains("metadata quorum log", e.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(_root, "node-1", "log"), e.Message, StringComparison.Ordinal);

        // The two others go on: a leader among them, and every committed write still there.
        var survivor = await LeaderAsync();
        Assert.Equal(5, survivor.Image.LastOffset);
        Assert.NotNull(survivor.Image.Topic("t3"));
    }

    /// <summary>
    /// On a shared port, Raft and Kafka frames arrive at one listener: a connection that does not open with the Raft
    /// preamble is left whole for the Kafka side (here: a handler that answers its first 4 bytes back).
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheControllerPortLeavesKafkaFramesToKafka()
    {
        _controllerPort = true;
        foreach (var voter in _voters)
        {
            await StartAsync(voter.Id);
        }

        await (await LeaderAsync()).AppendAsync([Topic("shared")], TestContext.Current.CancellationToken);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _voters[0].Port, TestContext.Current.CancellationToken);
        var stream = client.GetStream();
        byte[] frame = [0, 0, 0, 12, 0, 18, 0, 3, 0, 0, 0, 7, 0, 0, 0, 0];
        await stream.WriteAsync(frame, TestContext.Current.CancellationToken);
        var echoed = new byte[4];
        await stream.ReadExactlyAsync(echoed, TestContext.Current.CancellationToken);
        Assert.Equal(frame[..4], echoed);
    }

    /// <summary>
    /// The leader is cut off from both other voters: they elect a leader of their own and go on writing, the cut-off
    /// one cannot commit anything (its write ends with NOT_CONTROLLER), and once the cut heals it follows the new leader
    /// and holds exactly the majority's entries.
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ACutOffLeaderCommitsNothingAndTheMajorityGoesOn()
    {
        _controllerPort = true;
        foreach (var voter in _voters)
        {
            await StartAsync(voter.Id);
        }

        var old = await LeaderAsync();
        await old.AppendAsync([Topic("before")], TestContext.Current.CancellationToken);
        var others = _voters.Where(v => v.Id != old.NodeId).ToList();
        SetCut(old.NodeId, others, cut: true);

        // The majority elects one of its own, which takes writes.
        var majority = others.Select(v => _nodes[v.Id]).ToList();
        await TestWait.UntilAsync(() => majority.Count(n => n.IsLeader) == 1 && majority.All(n => n.LeaderId == majority.Single(l => l.IsLeader).NodeId));
        var leader = majority.Single(n => n.IsLeader);
        await leader.AppendAsync([Topic("majority")], TestContext.Current.CancellationToken);

        // The cut-off node cannot commit: its write ends as not the controller, never as a success.
        await Assert.ThrowsAsync<NotControllerException>(() => old.AppendAsync([Topic("minority")], TestContext.Current.CancellationToken));

        SetCut(old.NodeId, others, cut: false);
        await TestWait.UntilAsync(() => old.LeaderId == leader.NodeId && old.Image.Topic("majority") is not null);
        Assert.Equal(["before", "majority"], old.Image.Topics.Keys);
        Assert.Equal(leader.Image.LastOffset, old.Image.LastOffset);
    }

    private void SetCut(int node, IEnumerable<QuorumVoter> peers, bool cut)
    {
        var self = new IPEndPoint(IPAddress.Loopback, _voters[node - 1].Port);
        foreach (var peer in peers)
        {
            var other = new IPEndPoint(IPAddress.Loopback, peer.Port);
            if (cut)
            {
                _transports[node].Cut(other);
                _transports[peer.Id].Cut(self);
            }
            else
            {
                _transports[node].Heal(other);
                _transports[peer.Id].Heal(self);
            }
        }
    }

    private async Task<RaftMetadataQuorum> StartAsync(int id, long snapshotBytes = 20 << 20)
    {
        ControllerPortTransport? transport = null;
        if (_controllerPort)
        {
            transport = new ControllerPortTransport();
            _transports[id] = transport;
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, _voters[id - 1].Port, l => l.Run(async connection =>
            {
                if (!await transport.TryServeAsync(connection))
                {
                    var read = await connection.Transport.Input.ReadAtLeastAsync(4);
                    await connection.Transport.Output.WriteAsync(System.Buffers.BuffersExtensions.ToArray(read.Buffer.Slice(0, 4)));
                    connection.Transport.Input.AdvanceTo(read.Buffer.End);
                }
            })));
            var host = builder.Build();
            await host.StartAsync(TestContext.Current.CancellationToken);
            _hosts[id] = host;
        }

        var node = await RaftMetadataQuorum.StartAsync(
            new RaftQuorumOptions
            {
                NodeId = id,
                Voters = _voters,
                Directory = Path.Combine(_root, $"node-{id}"),
                ElectionTimeoutMs = 300,
                RequestTimeoutMs = 300,
                SnapshotBytes = snapshotBytes,
                Transport = transport,
                ProposedClusterId = _proposed.TryGetValue(id, out var proposed) ? proposed : _proposed[id] = MetaProperties.NewKafkaUuid(),
            },
            cancellationToken: TestContext.Current.CancellationToken);
        _nodes[id] = node;
        return node;
    }

    private async Task StopAsync(int id)
    {
        await _nodes[id].DisposeAsync();
        _nodes.Remove(id);
        if (_hosts.Remove(id, out var host))
        {
            await host.DisposeAsync();
        }
    }

    /// <summary>
    /// The leader once the running voters agree on one, it has taken office, and the quorum's cluster id is recorded
    /// (its first entry, which one of the voters proposed) and known to every voter.
    /// </summary>
    private async Task<RaftMetadataQuorum> LeaderAsync()
    {
        await TestWait.UntilAsync(() => _nodes.Values.Count(n => n.IsLeader) == 1
            && _nodes.Values.All(n => n.LeaderId == _nodes.Values.Single(l => l.IsLeader).NodeId));
        var ids = new HashSet<string>();
        foreach (var node in _nodes.Values)
        {
            ids.Add(await node.WhenClusterIdKnownAsync(TestContext.Current.CancellationToken));
        }

        Assert.Single(ids);
        Assert.Contains(ids.Single(), _proposed.Values);
        return _nodes.Values.Single(n => n.IsLeader);
    }

    private static TopicRecord Topic(string name) => new() { Name = name, TopicId = DeterministicId(name) };

    private static PartitionRecord Partition(string topic, int index) =>
        new() { TopicId = DeterministicId(topic), PartitionId = index, Replicas = [1, 2, 3], Isr = [1, 2, 3], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0 };

    private static Guid DeterministicId(string name) => new(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.UTF8.GetBytes(name)));

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes.Values)
        {
            await node.DisposeAsync();
        }

        foreach (var host in _hosts.Values)
        {
            await host.DisposeAsync();
        }

        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private sealed class Recorder(List<string> names) : IMetadataPublisher
    {
        public ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
        {
            lock (names)
            {
                names.AddRange(delta.CreatedTopics.Select(t => t.Name));
            }

            return ValueTask.CompletedTask;
        }
    }
}
