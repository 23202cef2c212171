using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Groups;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol.Messages;
using ErrorCode = Osprey.Protocol.ErrorCode;

namespace Osprey.Broker.Tests;

/// <summary>
/// The consumer group protocol (KIP-848) driven directly on the coordinator with a manual clock: joins, target
/// assignments, revocation before assignment, fencing, session and revocation timeouts, regex subscriptions,
/// takeover of an empty classic group, and state that survives a restart.
/// </summary>
public class ConsumerGroupProtocolTests
{
    private const int RebalanceMs = 30_000;
    private const int SessionMs = 45_000;

    private sealed class Member(string id)
    {
        public string Id { get; } = id;

        public int Epoch { get; set; }

        /// <summary>What the member owns, as a client would after applying its last assignment.</summary>
        public HashSet<(Guid, int)> Owned { get; set; } = [];
    }

    private static async Task CreateTopicAsync(TestBroker broker, string name, int partitions)
    {
        var result = new CreateTopicsResponse.CreatableTopicResult { Name = name };
        await broker.Server.Services.GetRequiredService<TopicCreator>().CreateAsync(
            new CreateTopicsRequest.CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }, result, validateOnly: false, TestContext.Current.CancellationToken);
        Assert.Equal(0, result.ErrorCode);
    }

    private static Guid TopicId(TestBroker broker, string name) =>
        broker.Server.Services.GetRequiredService<MetadataLog>().Image.Topic(name)!.TopicId;

    private static Task<ConsumerGroupHeartbeatResponse> HeartbeatAsync(GroupCoordinator groups, ConsumerGroupHeartbeatRequest request, short version = 1) =>
        groups.ConsumerHeartbeatAsync(request, version, "sim", "/127.0.0.1", TestContext.Current.CancellationToken);

    private static ConsumerGroupHeartbeatRequest JoinRequest(string group, Member member, string[]? topics = null, string? regex = null, string? assignor = null, string? instance = null) => new()
    {
        GroupId = group,
        MemberId = member.Id,
        MemberEpoch = 0,
        InstanceId = instance,
        RebalanceTimeoutMs = RebalanceMs,
        SubscribedTopicNames = topics?.ToList() ?? (regex is null ? [] : null),
        SubscribedTopicRegex = regex,
        ServerAssignor = assignor,
        TopicPartitions = [],
    };

    /// <summary>Joins and applies the answer.</summary>
    private static async Task<ConsumerGroupHeartbeatResponse> JoinAsync(GroupCoordinator groups, string group, Member member, string[]? topics = null, string? regex = null, string? assignor = null, string? instance = null)
    {
        var response = await HeartbeatAsync(groups, JoinRequest(group, member, topics, regex, assignor, instance));
        Apply(member, response);
        return response;
    }

    /// <summary>A regular heartbeat reporting what the member owns, as clients do; applies the answer.</summary>
    private static async Task<ConsumerGroupHeartbeatResponse> BeatAsync(GroupCoordinator groups, string group, Member member)
    {
        var response = await HeartbeatAsync(groups, new ConsumerGroupHeartbeatRequest
        {
            GroupId = group,
            MemberId = member.Id,
            MemberEpoch = member.Epoch,
            TopicPartitions = member.Owned.GroupBy(p => p.Item1).Select(t => new ConsumerGroupHeartbeatRequest.TopicPartitionsData { TopicId = t.Key, Partitions = t.Select(p => p.Item2).ToList() }).ToList(),
        });
        Apply(member, response);
        return response;
    }

    /// <summary>Three rounds of heartbeats from every member: enough for any revocation to complete.</summary>
    private static async Task RoundsAsync(GroupCoordinator groups, string group, params Member[] members)
    {
        for (var round = 0; round < 3; round++)
        {
            foreach (var member in members)
            {
                await BeatAsync(groups, group, member);
            }
        }
    }

    private static void Apply(Member member, ConsumerGroupHeartbeatResponse response)
    {
        Assert.Equal((short)ErrorCode.None, response.ErrorCode);
        member.Epoch = response.MemberEpoch;
        if (response.Assignment is { } assignment)
        {
            member.Owned = assignment.TopicPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))).ToHashSet();
        }
    }

    private static void AssertDisjoint(params Member[] members)
    {
        var all = members.SelectMany(m => m.Owned).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ANewMemberReceivesPartitionsOnlyAfterTheOwnerRevokedThem()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "orders", 4);
        var a = new Member("member-a");
        var b = new Member("member-b");

        var first = await JoinAsync(groups, "shop", a, ["orders"]);
        Assert.Equal(1, first.MemberEpoch);
        Assert.Equal(4, a.Owned.Count);
        Assert.True(first.HeartbeatIntervalMs > 0);

        // b joins: the group epoch moves to 2 and the target splits 2/2, but a still holds everything.
        await JoinAsync(groups, "shop", b, ["orders"]);
        Assert.Equal(2, b.Epoch);
        Assert.Empty(b.Owned);
        AssertDisjoint(a, b);

        // a is asked to give up two partitions; its epoch waits until it confirms.
        await BeatAsync(groups, "shop", a);
        Assert.Equal(1, a.Epoch);
        Assert.Equal(2, a.Owned.Count);
        await BeatAsync(groups, "shop", b);
        Assert.Empty(b.Owned); // not released yet: a has not confirmed

        await BeatAsync(groups, "shop", a); // a's heartbeat now owns only its two
        Assert.Equal(2, a.Epoch);
        await BeatAsync(groups, "shop", b);
        Assert.Equal(2, b.Owned.Count);
        AssertDisjoint(a, b);
        Assert.Equal(4, a.Owned.Union(b.Owned).Count());

        var described = await groups.DescribeConsumerGroupAsync("shop", TestContext.Current.CancellationToken);
        Assert.Equal(("Stable", 2, 2, "uniform"), (described.GroupState, described.GroupEpoch, described.AssignmentEpoch, described.AssignorName));
        Assert.All(described.Members, m => Assert.Equal("orders", Assert.Single(m.Assignment.TopicPartitions).TopicName));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task FiveMembersOnFourPartitionsLeaveExactlyOneIdle()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "events", 4);
        var members = Enumerable.Range(0, 5).Select(i => new Member($"m{i}")).ToArray();
        foreach (var member in members)
        {
            await JoinAsync(groups, "five", member, ["events"]);
        }

        for (var round = 0; round < 4; round++)
        {
            foreach (var member in members)
            {
                await BeatAsync(groups, "five", member);
                AssertDisjoint(members);
            }
        }

        Assert.Equal(4, members.SelectMany(m => m.Owned).Count());
        Assert.Equal(1, members.Count(m => m.Owned.Count == 0));
        Assert.Equal("Stable", (await groups.DescribeConsumerGroupAsync("five", TestContext.Current.CancellationToken)).GroupState);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task EpochsAreCheckedAndStrangersAreRefused()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 2);
        var a = new Member("a");
        await JoinAsync(groups, "epochs", a, ["t"]);

        var fenced = await HeartbeatAsync(groups, new() { GroupId = "epochs", MemberId = "a", MemberEpoch = a.Epoch + 5 });
        Assert.Equal((short)ErrorCode.FencedMemberEpoch, fenced.ErrorCode);
        var stranger = await HeartbeatAsync(groups, new() { GroupId = "epochs", MemberId = "who", MemberEpoch = 3 });
        Assert.Equal((short)ErrorCode.UnknownMemberId, stranger.ErrorCode);

        // Offsets from a member: its current epoch only.
        var stale = await groups.CommitOffsetsAsync(
            new OffsetCommitRequest { GroupId = "epochs", MemberId = "a", GenerationIdOrMemberEpoch = a.Epoch - 1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }] },
            (_, _) => true,
            TestContext.Current.CancellationToken);
        Assert.Equal((short)ErrorCode.StaleMemberEpoch, stale.Topics[0].Partitions[0].ErrorCode);
        var outsider = await groups.CommitOffsetsAsync(
            new OffsetCommitRequest { GroupId = "epochs", MemberId = "", GenerationIdOrMemberEpoch = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }] },
            (_, _) => true,
            TestContext.Current.CancellationToken);
        Assert.Equal((short)ErrorCode.UnknownMemberId, outsider.Topics[0].Partitions[0].ErrorCode);
        var ok = await groups.CommitOffsetsAsync(
            new OffsetCommitRequest { GroupId = "epochs", MemberId = "a", GenerationIdOrMemberEpoch = a.Epoch, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }] },
            (_, _) => true,
            TestContext.Current.CancellationToken);
        Assert.Equal(0, ok.Topics[0].Partitions[0].ErrorCode);
        var (fetchError, _) = await groups.FetchOffsetsAsync("epochs", null, TestContext.Current.CancellationToken, "a", a.Epoch + 1);
        Assert.Equal(ErrorCode.StaleMemberEpoch, fetchError);
    }

    [Theory(Timeout = TestLimits.Timeout)]
    [InlineData(0, "", "MemberId can't be empty.")]
    [InlineData(1, "", "MemberId can't be empty.")]
    [InlineData(0, "no-rebalance-timeout", "RebalanceTimeoutMs must be provided in first request.")]
    [InlineData(0, "owned-on-join", "TopicPartitions must be empty when (re-)joining.")]
    [InlineData(0, "no-subscription", "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")]
    [InlineData(-3, "bad-epoch", "MemberEpoch -3 is invalid.")]
    public async Task MalformedHeartbeatsAreInvalidRequests(int epoch, string memberId, string message)
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        var request = new ConsumerGroupHeartbeatRequest
        {
            GroupId = "bad",
            MemberId = memberId,
            MemberEpoch = epoch,
            RebalanceTimeoutMs = memberId == "no-rebalance-timeout" ? -1 : RebalanceMs,
            SubscribedTopicNames = memberId == "no-subscription" ? null : ["t"],
            TopicPartitions = memberId == "owned-on-join" ? [new() { TopicId = Guid.NewGuid(), Partitions = [0] }] : [],
        };
        var response = await HeartbeatAsync(groups, request);
        Assert.Equal(((short)ErrorCode.InvalidRequest, message), (response.ErrorCode, response.ErrorMessage));
        Assert.Empty((await groups.ListGroupsAsync([], TestContext.Current.CancellationToken)).Groups);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task UnknownAssignorsAndBadRegexesAreRefused()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        var assignor = await HeartbeatAsync(groups, JoinRequest("g", new Member("m"), ["t"], assignor: "sticky"));
        Assert.Equal((short)ErrorCode.UnsupportedAssignor, assignor.ErrorCode);
        var regex = await HeartbeatAsync(groups, JoinRequest("g", new Member("m"), regex: "orders-(["));
        Assert.Equal((short)ErrorCode.InvalidRegularExpression, regex.ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ARegexSubscriptionFollowsTopicsAsTheyAreCreated()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "orders-eu", 2);
        await CreateTopicAsync(broker, "payments", 2);
        var a = new Member("a");
        await JoinAsync(groups, "regex", a, regex: "orders-.*");
        Assert.Equal([(TopicId(broker, "orders-eu"), 0), (TopicId(broker, "orders-eu"), 1)], a.Owned.Order());

        await CreateTopicAsync(broker, "orders-us", 1);
        var before = a.Epoch;
        await BeatAsync(groups, "regex", a);
        Assert.True(a.Epoch > before);
        Assert.Contains((TopicId(broker, "orders-us"), 0), a.Owned);
        Assert.Equal(3, a.Owned.Count);
        var member = Assert.Single((await groups.DescribeConsumerGroupAsync("regex", TestContext.Current.CancellationToken)).Members);
        Assert.Equal("orders-.*", member.SubscribedTopicRegex);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheRangeAssignorGivesCoPartitionedTopicsTheSamePartitions()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "left", 4);
        await CreateTopicAsync(broker, "right", 4);
        var a = new Member("a");
        var b = new Member("b");
        await JoinAsync(groups, "ranged", a, ["left", "right"], assignor: "range");
        await JoinAsync(groups, "ranged", b, ["left", "right"], assignor: "range");
        await RoundsAsync(groups, "ranged", a, b);

        Assert.Equal([0, 1], a.Owned.Where(p => p.Item1 == TopicId(broker, "left")).Select(p => p.Item2).Order());
        Assert.Equal([0, 1], a.Owned.Where(p => p.Item1 == TopicId(broker, "right")).Select(p => p.Item2).Order());
        Assert.Equal([2, 3], b.Owned.Where(p => p.Item1 == TopicId(broker, "right")).Select(p => p.Item2).Order());
        Assert.Equal("range", (await groups.DescribeConsumerGroupAsync("ranged", TestContext.Current.CancellationToken)).AssignorName);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ASilentMemberIsFencedAfterTheSessionTimeoutAndItsPartitionsMove()
    {
        var (broker, groups, time) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 2);
        var a = new Member("a");
        var b = new Member("b");
        await JoinAsync(groups, "silent", a, ["t"]);
        await JoinAsync(groups, "silent", b, ["t"]);
        await RoundsAsync(groups, "silent", a, b);

        Assert.Single(b.Owned);

        // b keeps heartbeating, a falls silent.
        for (var elapsed = 0; elapsed <= SessionMs; elapsed += 5000)
        {
            time.Advance(5000);
            await BeatAsync(groups, "silent", b);
        }

        await TestWait.UntilAsync(() => groups.DescribeConsumerGroupAsync("silent", CancellationToken.None).Result.Members.Count == 1);
        await BeatAsync(groups, "silent", b);
        Assert.Equal(2, b.Owned.Count);
        var fenced = await HeartbeatAsync(groups, new() { GroupId = "silent", MemberId = "a", MemberEpoch = a.Epoch });
        Assert.Equal((short)ErrorCode.UnknownMemberId, fenced.ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AMemberThatDoesNotRevokeWithinItsRebalanceTimeoutIsFenced()
    {
        var (broker, groups, time) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 2);
        var a = new Member("a");
        var b = new Member("b");
        await JoinAsync(groups, "slow", a, ["t"]);
        await JoinAsync(groups, "slow", b, ["t"]);
        var told = await BeatAsync(groups, "slow", a); // asked to revoke one partition
        Assert.Single(a.Owned);

        // a keeps heartbeating but never confirms the revocation (it reports both partitions still owned).
        var stubborn = a.Owned.Concat(told.Assignment is null ? [] : []).ToHashSet();
        stubborn.Add((TopicId(broker, "t"), 0));
        stubborn.Add((TopicId(broker, "t"), 1));
        for (var elapsed = 0; elapsed <= RebalanceMs; elapsed += 5000)
        {
            time.Advance(5000);
            await BeatAsync(groups, "slow", b);
            var still = await HeartbeatAsync(groups, new()
            {
                GroupId = "slow",
                MemberId = "a",
                MemberEpoch = a.Epoch,
                TopicPartitions = [new() { TopicId = TopicId(broker, "t"), Partitions = [0, 1] }],
            });
            if (still.ErrorCode != 0)
            {
                Assert.Equal((short)ErrorCode.UnknownMemberId, still.ErrorCode);
                break;
            }
        }

        await TestWait.UntilAsync(() => groups.DescribeConsumerGroupAsync("slow", CancellationToken.None).Result.Members.Count == 1);
        await BeatAsync(groups, "slow", b);
        Assert.Equal(2, b.Owned.Count);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ALeavingMemberHandsItsPartitionsOver()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 4);
        var a = new Member("a");
        var b = new Member("b");
        await JoinAsync(groups, "leave", a, ["t"]);
        await JoinAsync(groups, "leave", b, ["t"]);
        await RoundsAsync(groups, "leave", a, b);

        var left = await HeartbeatAsync(groups, new() { GroupId = "leave", MemberId = "a", MemberEpoch = -1 });
        Assert.Equal(((short)0, -1), (left.ErrorCode, left.MemberEpoch));
        await BeatAsync(groups, "leave", b);
        Assert.Equal(4, b.Owned.Count);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AStaticMemberAwayKeepsItsPartitionsForItsReturnUnderANewMemberId()
    {
        var (broker, groups, _) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 2);
        var a = new Member("a1");
        var b = new Member("b");
        await JoinAsync(groups, "static", a, ["t"], instance: "host-a");
        await JoinAsync(groups, "static", b, ["t"]);
        await RoundsAsync(groups, "static", a, b);

        var held = a.Owned.ToHashSet();
        Assert.Single(held);
        var away = await HeartbeatAsync(groups, new() { GroupId = "static", MemberId = "a1", MemberEpoch = -2, InstanceId = "host-a" });
        Assert.Equal(-2, away.MemberEpoch);
        await BeatAsync(groups, "static", b);
        Assert.Single(b.Owned); // a's partition waits for it

        // Another process claiming the instance while the first is active is refused; the returning one takes over.
        var back = new Member("a2");
        await JoinAsync(groups, "static", back, ["t"], instance: "host-a");
        Assert.Equal(held, back.Owned);
        var intruder = await HeartbeatAsync(groups, JoinRequest("static", new Member("a3"), ["t"], instance: "host-a"));
        Assert.Equal((short)ErrorCode.UnreleasedInstanceId, intruder.ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AnEmptyClassicGroupIsTakenOverWithItsOffsetsAndABusyOneIsNot()
    {
        var (broker, groups, time) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 1);
        var commit = await groups.CommitOffsetsAsync(
            new OffsetCommitRequest { GroupId = "legacy", MemberId = "", GenerationIdOrMemberEpoch = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 42 }] }] },
            (_, _) => true,
            TestContext.Current.CancellationToken);
        Assert.Equal(0, commit.Topics[0].Partitions[0].ErrorCode);
        var (_, listed) = await groups.ListGroupsAsync([], TestContext.Current.CancellationToken);
        Assert.Equal("classic", Assert.Single(listed).Type);

        await JoinAsync(groups, "legacy", new Member("m"), ["t"]);
        (_, listed) = await groups.ListGroupsAsync([], TestContext.Current.CancellationToken);
        Assert.Equal(("legacy", "consumer", "Stable"), (Assert.Single(listed).GroupId, listed[0].Type, listed[0].State));
        var (_, offsets) = await groups.FetchOffsetsAsync("legacy", null, TestContext.Current.CancellationToken);
        Assert.Equal(42, Assert.Single(Assert.Single(offsets).Partitions).Offset!.Offset);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await groups.DescribeGroupAsync("legacy", 6, TestContext.Current.CancellationToken)).ErrorCode);
        Assert.Equal(ErrorCode.NonEmptyGroup, await groups.DeleteGroupAsync("legacy", TestContext.Current.CancellationToken));

        // A classic group with members stays classic.
        var joining = groups.JoinGroupAsync(
            new JoinGroupRequest { GroupId = "busy", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, MemberId = "", GroupInstanceId = "i", ProtocolType = "consumer", Protocols = [new() { Name = "range", Metadata = [] }] },
            9,
            "sim",
            "/127.0.0.1",
            TestContext.Current.CancellationToken);
        await TestWait.UntilAsync(() => time.ActiveTimers > 0);
        time.Advance(3000); // group.initial.rebalance.delay.ms
        Assert.Equal(0, (await joining).ErrorCode);
        var refused = await HeartbeatAsync(groups, JoinRequest("busy", new Member("m"), ["t"]));
        Assert.Equal((short)ErrorCode.GroupIdNotFound, refused.ErrorCode);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await groups.DescribeConsumerGroupAsync("busy", TestContext.Current.CancellationToken)).ErrorCode);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheGroupSurvivesARestartWithEpochsAndAssignments()
    {
        var a = new Member("a");
        var b = new Member("b");
        var (broker, groups, time) = await GroupCoordinatorSimulationTests.StartAsync();
        await using var _b = broker;
        await CreateTopicAsync(broker, "t", 2);
        var topicId = TopicId(broker, "t");
        await JoinAsync(groups, "durable", a, ["t"]);
        await JoinAsync(groups, "durable", b, ["t"]);
        await RoundsAsync(groups, "durable", a, b);

        await broker.Server.DisposeAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        var (again, reloaded, _) = await GroupCoordinatorSimulationTests.StartAsync(dataDir, time);
        await using var _a = again;
        var described = await reloaded.DescribeConsumerGroupAsync("durable", TestContext.Current.CancellationToken);
        Assert.Equal(("Stable", 2, 2), (described.GroupState, described.GroupEpoch, described.Members.Count));

        // Both members carry on at their epochs, owning what they owned.
        var ownedBefore = (a.Owned.ToHashSet(), b.Owned.ToHashSet());
        await BeatAsync(reloaded, "durable", a);
        await BeatAsync(reloaded, "durable", b);
        Assert.True(ownedBefore.Item1.SetEquals(a.Owned) && ownedBefore.Item2.SetEquals(b.Owned));
        Assert.Equal(2, a.Owned.Union(b.Owned).Count(p => p.Item1 == topicId));
    }
}
