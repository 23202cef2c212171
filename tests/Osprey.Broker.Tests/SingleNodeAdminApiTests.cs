using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Security;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

/// <summary>
/// The admin APIs Kafka 4 advertises whose full meaning comes with clustering and security, answered as Kafka 4
/// answers them on a single node without an authorizer (the expected codes and messages were read off Kafka 4.0).
/// </summary>
public class SingleNodeAdminApiTests
{
    private static async Task<(TestBroker Broker, RawConnection Connection)> StartWithTopicAsync()
    {
        var broker = await TestBroker.StartAsync();
        await TransactionTests.CreateAsync(broker, "present", 2);
        return (broker, await RawConnection.OpenAsync(broker.Server.Port));
    }

    private static async Task<T> CallAsync<T>(RawConnection connection, IApiMessage request, short version)
        where T : IApiMessage, new()
    {
        await connection.SendAsync(request, version, 7);
        return (await connection.ReceiveAsync<T>(version)).Body;
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task AclCallsAreAnsweredSecurityDisabled()
    {
        var (broker, connection) = await StartWithTopicAsync();
        await using var _ = broker;
        using var __ = connection;
        var described = await CallAsync<DescribeAclsResponse>(connection, new DescribeAclsRequest { ResourceTypeFilter = 1, PatternTypeFilter = 1, Operation = 1, PermissionType = 1 }, 3);
        Assert.Equal(((short)ErrorCode.SecurityDisabled, "No Authorizer is configured on the broker"), (described.ErrorCode, described.ErrorMessage));
        Assert.Empty(described.Resources);

        var created = await CallAsync<CreateAclsResponse>(connection, new CreateAclsRequest
        {
            Creations = [new() { ResourceType = 2, ResourceName = "present", ResourcePatternType = 3, Principal = "User:a", Host = "*", Operation = 2, PermissionType = 3 }, new() { ResourceType = 2, ResourceName = "x", Principal = "User:b", Host = "*", Operation = 3, PermissionType = 3 }],
        }, 3);
        Assert.Equal(2, created.Results.Count);
        Assert.All(created.Results, r => Assert.Equal(((short)ErrorCode.SecurityDisabled, "No Authorizer is configured."), (r.ErrorCode, r.ErrorMessage)));

        var deleted = await CallAsync<DeleteAclsResponse>(connection, new DeleteAclsRequest { Filters = [new() { ResourceTypeFilter = 1, PatternTypeFilter = 1, Operation = 1, PermissionType = 1 }] }, 1);
        var filter = Assert.Single(deleted.FilterResults);
        Assert.Equal((short)ErrorCode.SecurityDisabled, filter.ErrorCode);
        Assert.Empty(filter.MatchingAcls);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ElectionsAreNotNeededAndUnknownPartitionsAreNamed()
    {
        var (broker, connection) = await StartWithTopicAsync();
        await using var _ = broker;
        using var __ = connection;
        var named = await CallAsync<ElectLeadersResponse>(connection, new ElectLeadersRequest
        {
            ElectionType = 0,
            TopicPartitions = [new() { Topic = "present", Partitions = [0, 7] }, new() { Topic = "absent", Partitions = [0] }],
        }, 2);
        Assert.Equal(0, named.ErrorCode);
        Assert.Equal(
            [("present", 0, (short)ErrorCode.ElectionNotNeeded), ("present", 7, (short)ErrorCode.UnknownTopicOrPartition), ("absent", 0, (short)ErrorCode.UnknownTopicOrPartition)],
            named.ReplicaElectionResults.SelectMany(t => t.PartitionResult.Select(p => (t.Topic, p.PartitionId, p.ErrorCode))));

        var all = await CallAsync<ElectLeadersResponse>(connection, new ElectLeadersRequest { ElectionType = 1, TopicPartitions = null }, 1);
        var topic = Assert.Single(all.ReplicaElectionResults, t => t.Topic == "present");
        Assert.Empty(topic.PartitionResult);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ReplicasStayInTheOneDataDirectoryAndOnTheOneBroker()
    {
        var (broker, connection) = await StartWithTopicAsync();
        await using var _ = broker;
        using var __ = connection;
        var moved = await CallAsync<AlterReplicaLogDirsResponse>(connection, new AlterReplicaLogDirsRequest
        {
            Dirs =
            [
                new() { Path = Path.GetFullPath(broker.Server.Options.DataDirectory) + "/", Topics = [new() { Name = "present", Partitions = [0] }, new() { Name = "absent", Partitions = [0] }] },
                new() { Path = "/somewhere/else", Topics = [new() { Name = "present", Partitions = [1] }] },
            ],
        }, 2);
        Assert.Equal(
            [("present", 0, ErrorCode.None), ("absent", 0, ErrorCode.UnknownTopicOrPartition), ("present", 1, ErrorCode.LogDirNotFound)],
            moved.Results.SelectMany(t => t.Partitions.Select(p => (t.TopicName, p.PartitionIndex, (ErrorCode)p.ErrorCode))));

        var reassigned = await CallAsync<AlterPartitionReassignmentsResponse>(connection, new AlterPartitionReassignmentsRequest
        {
            Topics =
            [
                new() { Name = "present", Partitions = [new() { PartitionIndex = 0, Replicas = [1] }, new() { PartitionIndex = 1, Replicas = [2] }, new() { PartitionIndex = 1, Replicas = [1, 1] }, new() { PartitionIndex = 0, Replicas = null }, new() { PartitionIndex = 9, Replicas = [1] }] },
                new() { Name = "absent", Partitions = [new() { PartitionIndex = 0, Replicas = [1] }] },
            ],
        }, 0);
        Assert.Equal((0, null), (reassigned.ErrorCode, reassigned.ErrorMessage));
        Assert.Equal(
            [
                (ErrorCode.None, null),
                (ErrorCode.InvalidReplicaAssignment, "The manual partition assignment includes broker 2, but no such broker is registered."),
                (ErrorCode.InvalidReplicaAssignment, "The manual partition assignment includes the broker 1 more than once."),
                (ErrorCode.NoReassignmentInProgress, null),
                (ErrorCode.UnknownTopicOrPartition, "Unable to find partition present:9."),
                (ErrorCode.UnknownTopicOrPartition, "Unable to find a topic named absent."),
            ],
            reassigned.Responses.SelectMany(t => t.Partitions.Select(p => ((ErrorCode)p.ErrorCode, p.ErrorMessage))));

        var listed = await CallAsync<ListPartitionReassignmentsResponse>(connection, new ListPartitionReassignmentsRequest { Topics = null }, 0);
        Assert.Equal((0, 0), (listed.ErrorCode, listed.Topics.Count));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheQuorumIsThisNodeAsTheOneVoter()
    {
        var (broker, connection) = await StartWithTopicAsync();
        await using var _ = broker;
        using var __ = connection;
        var quorum = await CallAsync<DescribeQuorumResponse>(connection, new DescribeQuorumRequest
        {
            Topics = [new() { TopicName = "__cluster_metadata", Partitions = [new() { PartitionIndex = 0 }] }, new() { TopicName = "present", Partitions = [new() { PartitionIndex = 0 }] }],
        }, 2);
        var end = broker.Server.Services.GetRequiredService<MetadataLog>().EndOffset;
        Assert.True(end > 0);
        var metadata = Assert.Single(quorum.Topics[0].Partitions);
        Assert.Equal((0, 1, end), (metadata.ErrorCode, metadata.LeaderId, metadata.HighWatermark));
        var voter = Assert.Single(metadata.CurrentVoters);
        Assert.Equal((1, end), (voter.ReplicaId, voter.LogEndOffset));
        Assert.Empty(metadata.Observers);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, Assert.Single(quorum.Topics[1].Partitions).ErrorCode);
        var node = Assert.Single(quorum.Nodes);
        Assert.Equal((1, broker.Server.Port), (node.NodeId, (int)Assert.Single(node.Listeners).Port));
    }

    /// <summary>
    /// SCRAM credentials set with AlterUserScramCredentials are kept as RFC 5802's StoredKey and ServerKey: checked
    /// with RFC 7677's example exchange (user "user", password "pencil"), whose client proof must verify against the
    /// stored key and whose server signature must come out of the server key, also after a restart.
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ScramCredentialsAreStoredAsKeysThatVerifyTheRfcExchange()
    {
        var (broker, connection) = await StartWithTopicAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        var salt = Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==");
        var salted = ScramMechanism.Sha256.SaltPassword("pencil", salt, 4096);
        await using var stopped = broker;
        using (connection)
        {
            var altered = await CallAsync<AlterUserScramCredentialsResponse>(connection, new AlterUserScramCredentialsRequest
            {
                Upsertions =
                [
                    new() { Name = "user", Mechanism = 1, Iterations = 4096, Salt = salt, SaltedPassword = salted },
                    new() { Name = "cheap", Mechanism = 1, Iterations = 100, Salt = salt, SaltedPassword = salted },
                    new() { Name = "odd", Mechanism = 9, Iterations = 4096, Salt = salt, SaltedPassword = salted },
                    new() { Name = "twice", Mechanism = 1, Iterations = 4096, Salt = salt, SaltedPassword = salted },
                    new() { Name = "twice", Mechanism = 2, Iterations = 4096, Salt = salt, SaltedPassword = new byte[64] },
                ],
                Deletions = [new() { Name = "nobody", Mechanism = 1 }],
            }, 0);
            Assert.Equal(
                [("nobody", ErrorCode.ResourceNotFound), ("user", ErrorCode.None), ("cheap", ErrorCode.UnacceptableCredential), ("odd", ErrorCode.UnsupportedSaslMechanism), ("twice", ErrorCode.DuplicateResource)],
                altered.Results.Select(r => (r.User, (ErrorCode)r.ErrorCode)));

            var described = await CallAsync<DescribeUserScramCredentialsResponse>(connection, new DescribeUserScramCredentialsRequest { Users = [new() { Name = "user" }, new() { Name = "twice" }, new() { Name = "dup" }, new() { Name = "dup" }] }, 0);
            Assert.Equal(
                [("user", ErrorCode.None, 1), ("twice", ErrorCode.ResourceNotFound, 0), ("dup", ErrorCode.DuplicateResource, 0)],
                described.Results.Select(r => (r.User, (ErrorCode)r.ErrorCode, r.CredentialInfos.Count)));
            Assert.Equal((1, 4096), (described.Results[0].CredentialInfos[0].Mechanism, described.Results[0].CredentialInfos[0].Iterations));
        }

        await broker.Server.DisposeAsync();

        await using var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir });
        var credential = restarted.Server.Services.GetRequiredService<MetadataLog>().Image.ScramCredentials["user"][1];
        Assert.Equal(salt, credential.Salt.ToArray());
        const string ClientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        const string ServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        const string ClientFinalWithoutProof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        var authMessage = Encoding.ASCII.GetBytes($"{ClientFirstBare},{ServerFirst},{ClientFinalWithoutProof}");
        var proof = Convert.FromBase64String("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        var clientSignature = HMACSHA256.HashData(credential.StoredKey.AsSpan(), authMessage);
        var clientKey = proof.Zip(clientSignature, (a, b) => (byte)(a ^ b)).ToArray();
        Assert.Equal(credential.StoredKey.ToArray(), SHA256.HashData(clientKey));
        Assert.Equal("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", Convert.ToBase64String(HMACSHA256.HashData(credential.ServerKey.AsSpan(), authMessage)));
        using var again = await RawConnection.OpenAsync(restarted.Server.Port);
        var all = await CallAsync<DescribeUserScramCredentialsResponse>(again, new DescribeUserScramCredentialsRequest { Users = null }, 0);
        Assert.Equal(["user"], all.Results.Select(r => r.User));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task NoClientQuotasAreSetAndFiltersAreCheckedAsKafkaChecksThem()
    {
        var (broker, connection) = await StartWithTopicAsync();
        await using var _ = broker;
        using var __ = connection;
        var user = await CallAsync<DescribeClientQuotasResponse>(connection, new DescribeClientQuotasRequest { Components = [new() { EntityType = "user", MatchType = 0, Match = "alice" }] }, 1);
        Assert.Equal((0, 0), (user.ErrorCode, user.Entries!.Count));
        var odd = await CallAsync<DescribeClientQuotasResponse>(connection, new DescribeClientQuotasRequest { Components = [new() { EntityType = "weird", MatchType = 0, Match = "x" }] }, 1);
        Assert.Equal(((short)ErrorCode.UnsupportedVersion, "Unsupported entity type weird", null), (odd.ErrorCode, odd.ErrorMessage, odd.Entries));
        var twice = await CallAsync<DescribeClientQuotasResponse>(connection, new DescribeClientQuotasRequest { Components = [new() { EntityType = "user", MatchType = 0, Match = "x" }, new() { EntityType = "user", MatchType = 1 }] }, 0);
        Assert.Equal((short)ErrorCode.InvalidRequest, twice.ErrorCode);
    }
}
