using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Config;
using Osprey.Broker.Groups;
using Osprey.Protocol.Messages;
using Osprey.Storage.Tests;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// The group coordinator driven directly on a manual clock: join storms, members that stop heartbeating,
/// concurrent commits and restarts, each with its outcome asserted.
/// </summary>
public class GroupCoordinatorSimulationTests
{
    private const int SessionMs = 10_000;
    private const int RebalanceMs = 30_000;

    // A new group waits this long for more members before its first generation (group.initial.rebalance.delay.ms).
    private const int InitialDelayMs = 3000;

    internal static async Task<(TestBroker Broker, GroupCoordinator Groups, ManualTimeProvider Time)> StartAsync(string? dataDirectory = null, ManualTimeProvider? time = null, int initialDelayMs = InitialDelayMs, params (string Name, string Value)[] settings)
    {
        time ??= new ManualTimeProvider();
        var broker = await TestBroker.StartAsync(o => o with
        {
            Time = time,
            DataDirectory = dataDirectory ?? o.DataDirectory,
            Config = BrokerConfig.From([("group.initial.rebalance.delay.ms", initialDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("offsets.topic.num.partitions", "3"), .. settings]),
        });
        var groups = broker.Server.Services.GetRequiredService<GroupCoordinator>();
        Assert.Equal(ErrorCode.None, await groups.EnsureStartedAsync(TestContext.Current.CancellationToken));
        await TestWait.UntilAsync(() => groups.AllLoaded);
        return (broker, groups, time);
    }

    private static JoinGroupRequest Join(string group, string memberId = "", string? instance = null) => new()
    {
        GroupId = group,
        SessionTimeoutMs = SessionMs,
        RebalanceTimeoutMs = RebalanceMs,
        MemberId = memberId,
        GroupInstanceId = instance,
        ProtocolType = "consumer",
        Protocols = [new() { Name = "range", Metadata = [1, 2, 3] }],
    };

    private static JoinGroupRequest With(JoinGroupRequest request, Action<JoinGroupRequest> change)
    {
        change(request);
        return request;
    }

    private static Task<JoinGroupResponse> JoinAsync(GroupCoordinator groups, JoinGroupRequest request) =>
        groups.JoinGroupAsync(request, 9, "sim", "/127.0.0.1", TestContext.Current.CancellationToken);

    /// <summary>Joins with the two-step member id handshake; returns the pending join.</summary>
    private static async Task<Task<JoinGroupResponse>> JoinNewAsync(GroupCoordinator groups, string group)
    {
        var first = await JoinAsync(groups, Join(group));
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        return JoinAsync(groups, Join(group, first.MemberId));
    }

    private static Task<SyncGroupResponse> SyncAsync(GroupCoordinator groups, string group, JoinGroupResponse joined, Dictionary<string, byte[]>? assignments = null) =>
        groups.SyncGroupAsync(
            new SyncGroupRequest
            {
                GroupId = group,
                GenerationId = joined.GenerationId,
                MemberId = joined.MemberId,
                ProtocolType = "consumer",
                ProtocolName = "range",
                Assignments = (assignments ?? []).Select(a => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = a.Key, Assignment = a.Value }).ToList(),
            },
            TestContext.Current.CancellationToken);

    private static Task<HeartbeatResponse> HeartbeatAsync(GroupCoordinator groups, string group, JoinGroupResponse joined, string? instance = null) =>
        groups.HeartbeatAsync(new HeartbeatRequest { GroupId = group, GenerationId = joined.GenerationId, MemberId = joined.MemberId, GroupInstanceId = instance }, TestContext.Current.CancellationToken);

    /// <summary>
    /// Joins <paramref name="count"/> members to a new group within its initial delay and syncs them; the leader
    /// hands member i the byte i.
    /// </summary>
    private static async Task<JoinGroupResponse[]> FormGroupAsync(GroupCoordinator groups, ManualTimeProvider time, string group, int count)
    {
        var pending = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => JoinNewAsync(groups, group)));
        Assert.All(pending, p => Assert.False(p.IsCompleted));
        time.Advance(InitialDelayMs);
        var joined = await Task.WhenAll(pending);
        var leader = Assert.Single(joined, j => j.Members.Count > 0);
        var assignments = leader.Members.Select((m, i) => (m.MemberId, new[] { (byte)i })).ToDictionary(a => a.MemberId, a => a.Item2);
        var synced = await Task.WhenAll(joined.Select(j => SyncAsync(groups, group, j, j == leader ? assignments : null)));
        Assert.All(synced.Zip(joined), s => Assert.Equal(assignments[s.Second.MemberId], s.First.Assignment));
        return joined;
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AJoinStormEndsInOneGenerationWithOneLeader()
    {
        var (broker, groups, time) = await StartAsync();
        await using var _ = broker;
        var joined = await FormGroupAsync(groups, time, "storm", 12);
        Assert.Single(joined.Select(j => j.GenerationId).Distinct());
        Assert.Single(joined.Select(j => j.Leader).Distinct());
        Assert.Equal(12, joined.Select(j => j.MemberId).Distinct().Count());
        Assert.Equal(12, joined.Single(j => j.MemberId == j.Leader).Members.Count);
        var described = await groups.DescribeGroupAsync("storm", 5, TestContext.Current.CancellationToken);
        Assert.Equal(("Stable", "consumer", "range", 12), (described.GroupState, described.ProtocolType, described.ProtocolData, described.Members.Count));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AMemberThatStopsHeartbeatingIsRemovedAfterItsSessionTimeout()
    {
        var (broker, groups, time) = await StartAsync();
        await using var _ = broker;
        var joined = await FormGroupAsync(groups, time, "expiry", 3);
        var (a, b, silent) = (joined[0], joined[1], joined[2]);

        time.Advance(SessionMs - 1000);
        Assert.Equal(0, (await HeartbeatAsync(groups, "expiry", a)).ErrorCode);
        Assert.Equal(0, (await HeartbeatAsync(groups, "expiry", b)).ErrorCode);
        time.Advance(2000); // the silent member's session has ended; a and b renewed theirs
        await TestWait.UntilAsync(() => groups.DescribeGroupAsync("expiry", 5, CancellationToken.None).Result.GroupState == "PreparingRebalance");
        Assert.Equal((short)ErrorCode.RebalanceInProgress, (await HeartbeatAsync(groups, "expiry", a)).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await HeartbeatAsync(groups, "expiry", silent)).ErrorCode);

        var rejoined = await Task.WhenAll(JoinAsync(groups, Join("expiry", a.MemberId)), JoinAsync(groups, Join("expiry", b.MemberId)));
        Assert.All(rejoined, r => Assert.Equal((0, a.GenerationId + 1), ((int)r.ErrorCode, r.GenerationId)));
        Assert.Equal(2, rejoined.Single(r => r.Members.Count > 0).Members.Count);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AMemberThatDoesNotRejoinInTimeIsDroppedFromTheRebalance()
    {
        var (broker, groups, time) = await StartAsync();
        await using var _ = broker;
        var joined = await FormGroupAsync(groups, time, "slow", 2);
        var newcomer = await JoinNewAsync(groups, "slow"); // starts a rebalance
        var quick = JoinAsync(groups, Join("slow", joined[0].MemberId));
        Assert.False(quick.IsCompleted); // waits for the second old member
        Assert.Equal((short)ErrorCode.RebalanceInProgress, (await HeartbeatAsync(groups, "slow", joined[1])).ErrorCode);
        time.Advance(RebalanceMs);
        var results = await Task.WhenAll(quick, newcomer);
        Assert.All(results, r => Assert.Equal(0, r.ErrorCode));
        Assert.Equal(2, results.Single(r => r.Members.Count > 0).Members.Count);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await HeartbeatAsync(groups, "slow", joined[1])).ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ConcurrentCommitsAllLandAndSurviveARestart()
    {
        var (broker, groups, time) = await StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        using (var admin = new Confluent.Kafka.AdminClientBuilder(new Confluent.Kafka.AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "committed", NumPartitions = 8 }]);
        }

        var joined = await FormGroupAsync(groups, time, "committers", 2);
        var commits = Enumerable.Range(0, 8).Select(p => groups.CommitOffsetsAsync(
            new OffsetCommitRequest
            {
                GroupId = "committers",
                GenerationIdOrMemberEpoch = joined[p % 2].GenerationId,
                MemberId = joined[p % 2].MemberId,
                Topics = [new() { Name = "committed", Partitions = [new() { PartitionIndex = p, CommittedOffset = 100 + p, CommittedMetadata = $"m{p}" }] }],
            },
            (_, _) => true,
            TestContext.Current.CancellationToken));
        Assert.All(await Task.WhenAll(commits), r => Assert.Equal(0, r.Topics[0].Partitions[0].ErrorCode));

        // Stale generation: refused, nothing written.
        var stale = await groups.CommitOffsetsAsync(
            new OffsetCommitRequest { GroupId = "committers", GenerationIdOrMemberEpoch = 99, MemberId = joined[0].MemberId, Topics = [new() { Name = "committed", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }] },
            (_, _) => true,
            TestContext.Current.CancellationToken);
        Assert.Equal((short)ErrorCode.IllegalGeneration, stale.Topics[0].Partitions[0].ErrorCode);

        // A rebalance is under way when the broker stops.
        _ = await JoinNewAsync(groups, "committers");
        await broker.Server.DisposeAsync();

        var (restarted, again, _) = await StartAsync(dataDir, time);
        await using var __ = restarted;
        var (error, offsets) = await again.FetchOffsetsAsync("committers", null, TestContext.Current.CancellationToken);
        Assert.Equal(ErrorCode.None, error);
        var partitions = Assert.Single(offsets).Partitions;
        Assert.Equal(Enumerable.Range(0, 8).Select(p => (p, 100L + p, $"m{p}")), partitions.Select(p => (p.Partition, p.Offset!.Offset, p.Offset.Metadata!)));

        // The group comes back as last completed: stable, its two members, their generation.
        var described = await again.DescribeGroupAsync("committers", 5, TestContext.Current.CancellationToken);
        Assert.Equal(("Stable", 2), (described.GroupState, described.Members.Count));
        Assert.Equal(0, (await HeartbeatAsync(again, "committers", joined[0])).ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStaticMemberComingBackWithinItsSessionCausesNoRebalance()
    {
        var (broker, groups, time) = await StartAsync();
        await using var _ = broker;
        var pending = new[] { JoinAsync(groups, Join("static", instance: "host-a")), JoinAsync(groups, Join("static", instance: "host-b")) };
        Assert.All(pending, p => Assert.False(p.IsCompleted));
        time.Advance(InitialDelayMs); // the initial delay ends: both are in the first generation
        var joined = await Task.WhenAll(pending);
        var leader = joined.Single(j => j.Members.Count > 0);
        var follower = joined.Single(j => j.Members.Count == 0);
        Assert.Equal(["host-a", "host-b"], leader.Members.Select(m => m.GroupInstanceId).Order());
        var assignments = leader.Members.ToDictionary(m => m.MemberId, m => new[] { (byte)(m.GroupInstanceId == "host-a" ? 'a' : 'b') });
        await Task.WhenAll(SyncAsync(groups, "static", leader, assignments), SyncAsync(groups, "static", follower));
        var followerInstance = leader.Members.Single(m => m.MemberId == follower.MemberId).GroupInstanceId!;

        // The follower's process restarts: it joins again without a member id, with the same instance id.
        var back = await JoinAsync(groups, Join("static", instance: followerInstance));
        Assert.Equal((0, follower.GenerationId), ((int)back.ErrorCode, back.GenerationId));
        Assert.NotEqual(follower.MemberId, back.MemberId);
        Assert.Equal(assignments[follower.MemberId], (await SyncAsync(groups, "static", back)).Assignment);
        Assert.Equal((short)ErrorCode.FencedInstanceId, (await HeartbeatAsync(groups, "static", follower, followerInstance)).ErrorCode);
        Assert.Equal(0, (await HeartbeatAsync(groups, "static", leader)).ErrorCode);
        Assert.Equal("Stable", (await groups.DescribeGroupAsync("static", 5, TestContext.Current.CancellationToken)).GroupState);

        // The leader's process restarts too: it is still the leader, told to skip the assignment (KIP-814), and
        // nothing rebalances; its SyncGroup returns what it had whatever it sends.
        var leaderInstance = leader.Members.Single(m => m.MemberId == leader.MemberId).GroupInstanceId!;
        var leaderBack = await JoinAsync(groups, Join("static", instance: leaderInstance));
        Assert.Equal((0, leader.GenerationId, leaderBack.MemberId, true), ((int)leaderBack.ErrorCode, leaderBack.GenerationId, leaderBack.Leader, leaderBack.SkipAssignment));
        Assert.Equal(2, leaderBack.Members.Count);
        Assert.Equal(assignments[leader.MemberId], (await SyncAsync(groups, "static", leaderBack, [])).Assignment);
        Assert.Equal(0, (await HeartbeatAsync(groups, "static", back)).ErrorCode);
        Assert.Equal("Stable", (await groups.DescribeGroupAsync("static", 5, TestContext.Current.CancellationToken)).GroupState);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task JoinRefusalsCarryKafkasErrors()
    {
        var (broker, groups, time) = await StartAsync();
        await using var _ = broker;
        Assert.Equal((short)ErrorCode.InvalidSessionTimeout, (await JoinAsync(groups, With(Join("rules"), j => j.SessionTimeoutMs = 10))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidGroupId, (await JoinAsync(groups, Join(""))).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await JoinAsync(groups, Join("rules", "nobody"))).ErrorCode);
        var joined = await FormGroupAsync(groups, time, "rules", 1);
        var other = Join("rules");
        other.Protocols = [new() { Name = "roundrobin", Metadata = [] }];
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, (await JoinAsync(groups, other)).ErrorCode);
        var wrongType = Join("rules");
        wrongType.ProtocolType = "connect";
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, (await JoinAsync(groups, wrongType)).ErrorCode);
        Assert.Equal((short)ErrorCode.IllegalGeneration, (await groups.HeartbeatAsync(new HeartbeatRequest { GroupId = "rules", GenerationId = 7, MemberId = joined[0].MemberId }, TestContext.Current.CancellationToken)).ErrorCode);
        var badSync = await groups.SyncGroupAsync(new SyncGroupRequest { GroupId = "rules", GenerationId = joined[0].GenerationId, MemberId = joined[0].MemberId, ProtocolName = "sticky" }, TestContext.Current.CancellationToken);
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, badSync.ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task DeletingGroupsAndOffsetsRespectsMembers()
    {
        var (broker, groups, time) = await StartAsync();
        await using var _ = broker;
        var subscription = new Osprey.Protocol.Messages.ConsumerProtocolSubscription { Topics = ["watched"] };
        var join = Join("busy");
        join.Protocols = [new() { Name = "range", Metadata = Osprey.Protocol.MessageCodec.SerializeVersioned(subscription, 0) }];
        var first = await JoinAsync(groups, join);
        var pending = JoinAsync(groups, With(Join("busy", first.MemberId), j => j.Protocols = join.Protocols));
        time.Advance(InitialDelayMs);
        var member = await pending;
        await SyncAsync(groups, "busy", member, new() { [member.MemberId] = [] });
        await groups.CommitOffsetsAsync(
            new OffsetCommitRequest { GroupId = "busy", GenerationIdOrMemberEpoch = member.GenerationId, MemberId = member.MemberId, Topics = [new() { Name = "watched", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 3 }] }, new() { Name = "other", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 4 }] }] },
            (_, _) => true,
            TestContext.Current.CancellationToken);

        Assert.Equal(ErrorCode.NonEmptyGroup, await groups.DeleteGroupAsync("busy", TestContext.Current.CancellationToken));
        Assert.Equal(ErrorCode.GroupIdNotFound, await groups.DeleteGroupAsync("never", TestContext.Current.CancellationToken));
        var deleted = await groups.DeleteOffsetsAsync(new OffsetDeleteRequest { GroupId = "busy", Topics = [new() { Name = "watched", Partitions = [new() { PartitionIndex = 0 }] }, new() { Name = "other", Partitions = [new() { PartitionIndex = 0 }] }] }, TestContext.Current.CancellationToken);
        Assert.Equal([(short)ErrorCode.GroupSubscribedToTopic, (short)0], deleted.Topics.Select(t => t.Partitions[0].ErrorCode));
        var (_, left) = await groups.FetchOffsetsAsync("busy", null, TestContext.Current.CancellationToken);
        Assert.Equal(["watched"], left.Select(t => t.Topic));

        var (_, listed) = await groups.ListGroupsAsync(["stable"], TestContext.Current.CancellationToken);
        Assert.Equal([("busy", "consumer", "Stable", "classic")], listed);
        Assert.Empty((await groups.ListGroupsAsync(["Empty"], TestContext.Current.CancellationToken)).Groups);

        await groups.LeaveGroupAsync(new LeaveGroupRequest { GroupId = "busy", Members = [new() { MemberId = member.MemberId }] }, 5, TestContext.Current.CancellationToken);
        Assert.Equal("Empty", (await groups.DescribeGroupAsync("busy", 5, TestContext.Current.CancellationToken)).GroupState);
        Assert.Equal(ErrorCode.None, await groups.DeleteGroupAsync("busy", TestContext.Current.CancellationToken));
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await groups.DescribeGroupAsync("busy", 6, TestContext.Current.CancellationToken)).ErrorCode);
        Assert.Empty((await groups.FetchOffsetsAsync("busy", null, TestContext.Current.CancellationToken)).Topics);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnEmptyGroupsOffsetsExpireAfterTheRetentionPeriod()
    {
        var (broker, groups, time) = await StartAsync(settings: [("offsets.retention.minutes", "1"), ("offsets.retention.check.interval.ms", "1000")]);
        await using var _ = broker;
        foreach (var group in new[] { "idle", "kept" })
        {
            await groups.CommitOffsetsAsync(
                new OffsetCommitRequest { GroupId = group, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 9 }] }] },
                (_, _) => true,
                TestContext.Current.CancellationToken);
            time.Advance(1000);
        }

        // "kept" keeps a member, so its offsets stay however old they are.
        var member = await FormGroupAsync(groups, time, "kept", 1);
        for (var elapsed = 0L; elapsed <= groups.Options.OffsetsRetentionMs; elapsed += 1000)
        {
            time.Advance(1000);
            Assert.Equal(0, (await HeartbeatAsync(groups, "kept", member[0])).ErrorCode);
        }

        await TestWait.UntilAsync(() => groups.FetchOffsetsAsync("idle", null, CancellationToken.None).Result.Topics.Count == 0);
        Assert.Single((await groups.FetchOffsetsAsync("kept", null, TestContext.Current.CancellationToken)).Topics);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await groups.DescribeGroupAsync("idle", 6, TestContext.Current.CancellationToken)).ErrorCode);
    }
}

