using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.DependencyInjection;
using Osprey.Broker.Topics;
using Osprey.Broker.Transactions;
using Osprey.Metadata;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Tests;

/// <summary>
/// Answers worded and shaped as Kafka 4.0's, read off the reference broker (conformance/java/differential-vs-kafka.sh
/// compares the two with Kafka's own tools): tools and people grep for these.
/// </summary>
public class KafkaWordingTests
{
    [Theory]
    [InlineData("", "Topic name is invalid: the empty string is not allowed")]
    [InlineData(".", "Topic name is invalid: '.' is not allowed")]
    [InlineData("..", "Topic name is invalid: '..' is not allowed")]
    [InlineData("a/b", "Topic name is invalid: 'a/b' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")]
    [InlineData("ok.name_with-dashes", null)]
    public void TopicNamesAreRefusedInKafkasWords(string name, string? expected) => Assert.Equal(expected, TopicNames.Validate(name));

    [Fact]
    public void ATooLongTopicNameIsRefusedInKafkasWords()
    {
        var name = new string('a', 250);
        Assert.Equal($"Topic name is invalid: the length of '{name}' is longer than the max allowed length 249", TopicNames.Validate(name));
        Assert.Null(TopicNames.Validate(name[..249]));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task PartitionCountsThatAreNoIncreaseAreRefusedInKafkasWords()
    {
        await using var broker = await TestBroker.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "two", NumPartitions = 2, ReplicationFactor = 1 }]);
        var fewer = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "two", IncreaseTo = 1 }]));
        Assert.Equal((ErrorCode.InvalidPartitions, "The topic two currently has 2 partition(s); 1 would not be an increase."), (fewer.Results[0].Error.Code, fewer.Results[0].Error.Reason));
        var same = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "two", IncreaseTo = 2 }]));
        Assert.Equal((ErrorCode.InvalidPartitions, "Topic already has 2 partition(s)."), (same.Results[0].Error.Code, same.Results[0].Error.Reason));
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheFeaturesAreReportedAsKafka40ReportsThemOnOneNode()
    {
        await using var broker = await TestBroker.StartAsync();
        using var connection = await RawConnection.OpenAsync(broker.Server.Port);
        var versions = await IdempotenceTests.CallAsync<ApiVersionsResponse>(connection, new ApiVersionsRequest { ClientSoftwareName = "wording", ClientSoftwareVersion = "1" }, 3);
        var supported = versions.SupportedFeatures.ToDictionary(f => f.Name, f => (f.MinVersion, f.MaxVersion));
        var finalized = versions.FinalizedFeatures.ToDictionary(f => f.Name, f => f.MaxVersionLevel);
        Assert.Equal(((short)7, (short)25), supported["metadata.version"]); // 3.3-IV3 to 4.0-IV3
        Assert.Equal(25, finalized["metadata.version"]);
        Assert.Equal(((short)0, (short)1), supported["kraft.version"]);
        Assert.Equal(((short)0, (short)1), supported["eligible.leader.replicas.version"]);
        Assert.False(finalized.ContainsKey("kraft.version")); // level 0: not finalized
        Assert.Equal(((short)0, (short)1), supported["group.version"]);
        Assert.Equal(1, finalized["group.version"]);
        Assert.Equal(TransactionCoordinator.TransactionVersion2, finalized["transaction.version"]);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheTransactionLogTopicHasKafkasConfigs()
    {
        await using var broker = await TestBroker.StartAsync();
        var transactions = broker.Server.Services.GetRequiredService<TransactionCoordinator>();
        Assert.Equal(Osprey.Protocol.ErrorCode.None, await transactions.EnsureStartedAsync(TestContext.Current.CancellationToken));
        var configs = broker.Server.Services.GetRequiredService<MetadataLog>().Image.Topic(TransactionCoordinator.TopicName)!.Configs;
        Assert.Equal("uncompressed", configs["compression.type"]);
        Assert.Equal("false", configs["unclean.leader.election.enable"]);
        Assert.Equal("compact", configs["cleanup.policy"]);
    }
}
