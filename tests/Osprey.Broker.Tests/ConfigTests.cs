using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Osprey.Broker.Config;
using Osprey.Metadata;
using Osprey.Protocol.Messages;
using ConfigSource = Confluent.Kafka.Admin.ConfigSource;

namespace Osprey.Broker.Tests;

public class BrokerConfigLoadingTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    [Fact]
    public void PropertiesFileThenEnvironmentThenSetEachWin()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, """
                # a Kafka-style file
                ! also a comment
                num.partitions=3
                log.retention.ms = 1000
                log.cleaner.backoff.ms : 500
                log.cleanup.policy=compact,\
                    delete
                num.network.threads=8
                """);
            var environment = new Dictionary<string, string>
            {
                ["OSPREY_NUM_PARTITIONS"] = "4",
                ["OSPREY_LOG_SEGMENT_BYTES"] = "2097152",
                ["OSPREY_BOOTSTRAP"] = "127.0.0.1:9092",
                ["HOME"] = "/root",
            };
            var config = BrokerConfig.Load(file, environment, ["num.partitions=5"]);
            Assert.Equal(5, config.GetInt("num.partitions"));
            Assert.Equal(1000, config.GetLong("log.retention.ms"));
            Assert.Equal(500, config.GetLong("log.cleaner.backoff.ms"));
            Assert.Equal("compact,delete", config.Get("log.cleanup.policy"));
            Assert.Equal(2097152, config.GetInt("log.segment.bytes"));
            Assert.Equal(104857600, config.GetInt("socket.request.max.bytes"));
            Assert.Contains(config.Warnings, w => w.Contains("num.network.threads", StringComparison.Ordinal));
            Assert.False(config.Values.ContainsKey("num.network.threads"));
            Assert.Equal("8", config.Unused["num.network.threads"]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("no.such.setting=1", "no.such.setting")]
    [InlineData("num.partitions=0", "num.partitions")]
    [InlineData("auto.create.topics.enable=maybe", "auto.create.topics.enable")]
    [InlineData("log.cleanup.policy=shred", "log.cleanup.policy")]
    [InlineData("retention.ms=5", "retention.ms")]
    [InlineData("justaname", "justaname")]
    public void UnknownOrInvalidSettingsFailNamingThem(string set, string named)
    {
        var e = Assert.Throws<BrokerConfigException>(() => BrokerConfig.Load(null, NoEnvironment, [set]));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnInvalidEnvironmentVariableNamesTheVariable()
    {
        var e = Assert.Throws<BrokerConfigException>(() => BrokerConfig.Load(null, new Dictionary<string, string> { ["OSPREY_LOG_RETENTION_MS"] = "soon" }, []));
        Assert.Contains("OSPREY_LOG_RETENTION_MS", e.Message, StringComparison.Ordinal);
        Assert.Contains("log.retention.ms", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The README promises that a mistyped OSPREY_ variable stops the start (it was only warned about).</summary>
    [Fact]
    public void AMistypedEnvironmentVariableStopsTheStart()
    {
        var e = Assert.Throws<BrokerConfigException>(() => BrokerConfig.Load(null, new Dictionary<string, string> { ["OSPREY_LOG_RETENTON_MS"] = "1000" }, []));
        Assert.Contains("OSPREY_LOG_RETENTON_MS", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Every name Kafka knows is known: its broker settings and what its authorizer reads are accepted and ignored.</summary>
    [Theory]
    [InlineData("allow.everyone.if.no.acl.found=true")]
    [InlineData("super.users=User:admin")]
    [InlineData("num.io.threads=8")]
    [InlineData("share.coordinator.state.topic.replication.factor=1")]
    [InlineData("controller.quorum.bootstrap.servers=localhost:9093")]
    public void KafkasSettingNamesAreAcceptedAndIgnored(string set)
    {
        var config = BrokerConfig.Load(null, NoEnvironment, [set]);
        var name = set[..set.IndexOf('=', StringComparison.Ordinal)];
        Assert.True(config.Unused.ContainsKey(name) || config.Values.ContainsKey(name));
        _ = BrokerOptions.FromConfig(config);
    }

    /// <summary>
    /// Settings that would restrict access stop the start until security exists: ignoring them would leave a broker
    /// open that its owner believes secured.
    /// </summary>
    [Theory]
    [InlineData("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer")]
    [InlineData("ssl.keystore.location=/etc/kafka/broker.jks")]
    [InlineData("ssl.client.auth=required")]
    [InlineData("sasl.enabled.mechanisms=SCRAM-SHA-256")]
    [InlineData("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=x")]
    [InlineData("security.inter.broker.protocol=SSL")]
    [InlineData("listeners=SASL_PLAINTEXT://127.0.0.1:9092")]
    [InlineData("listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL|controller.listener.names=CONTROLLER")]
    [InlineData("listeners=PUBLIC://127.0.0.1:9092|listener.security.protocol.map=PUBLIC:SASL_SSL")]
    public void SettingsThatWouldRestrictAccessStopTheStart(string sets)
    {
        var e = Assert.Throws<BrokerConfigException>(() => BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, sets.Split('|'))));
        Assert.Contains("not support", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Kafka's stock config/server.properties (KRaft, one combined node, a CONTROLLER listener and two advertised
    /// listeners) starts as it would on Kafka: the client listener on every interface at 9092.
    /// </summary>
    [Fact]
    public void KafkasStockServerPropertiesAreAccepted()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, """
                process.roles=broker,controller
                node.id=1
                controller.quorum.bootstrap.servers=localhost:9093
                listeners=PLAINTEXT://:9092,CONTROLLER://:9093
                inter.broker.listener.name=PLAINTEXT
                advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
                controller.listener.names=CONTROLLER
                listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
                num.network.threads=3
                num.io.threads=8
                socket.send.buffer.bytes=102400
                socket.receive.buffer.bytes=102400
                socket.request.max.bytes=104857600
                log.dirs=/tmp/kraft-combined-logs
                num.partitions=1
                num.recovery.threads.per.data.dir=1
                offsets.topic.replication.factor=1
                share.coordinator.state.topic.replication.factor=1
                share.coordinator.state.topic.min.isr=1
                transaction.state.log.replication.factor=1
                transaction.state.log.min.isr=1
                log.retention.hours=168
                log.segment.bytes=1073741824
                log.retention.check.interval.ms=300000
                """);
            var options = BrokerOptions.FromConfig(BrokerConfig.Load(file, NoEnvironment, []));
            Assert.Equal((System.Net.IPAddress.Any, 9092, "localhost", (int?)9092, "PLAINTEXT"), (options.Listener.Address, options.Listener.Port, options.AdvertisedHost, options.AdvertisedPort, options.ListenerName));
            Assert.Equal(("/tmp/kraft-combined-logs", 1), (options.DataDirectory, options.NodeId));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>A combined node naming the other voters of its quorum is a node of a cluster (the example settings).</summary>
    [Fact]
    public void ACombinedNodeNamingOtherVotersIsANodeOfACluster()
    {
        var options = BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, [
            "node.id=2",
            "process.roles=broker,controller",
            "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters=1@127.0.0.1:19093,2@127.0.0.1:19193,3@127.0.0.1:19293",
            "broker.rack=r2"]));
        Assert.True(options.IsCluster);
        Assert.Equal([(1, 19093), (2, 19193), (3, 19293)], options.Voters.Select(v => (v.Id, v.Port)));
        Assert.Equal((19192, 19193, "CONTROLLER", "PLAINTEXT", "r2"), (options.Listener.Port, options.ControllerListener!.Port, options.ControllerListenerName, options.InterBrokerListenerName, options.Rack));
    }

    /// <summary>
    /// Valid KRaft settings Osprey does not run yet (a node of one role, a dynamic quorum found through several
    /// bootstrap controllers): refused, saying so.
    /// </summary>
    [Theory]
    [InlineData("process.roles=broker|controller.quorum.voters=2@127.0.0.1:9093|controller.listener.names=CONTROLLER|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")]
    [InlineData("process.roles=controller|controller.quorum.voters=1@127.0.0.1:9093|listeners=CONTROLLER://127.0.0.1:9093|controller.listener.names=CONTROLLER|listener.security.protocol.map=CONTROLLER:PLAINTEXT")]
    [InlineData("controller.quorum.bootstrap.servers=a:9093,b:9093|listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093|controller.listener.names=CONTROLLER|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")]
    public void KRaftSettingsOspreyDoesNotRunYetAreRefused(string sets)
    {
        var e = Assert.Throws<BrokerConfigException>(() => BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, sets.Split('|'))));
        Assert.Contains("does not support yet", e.Message, StringComparison.Ordinal);
    }

    /// <summary>KRaft settings that Kafka refuses are refused in Kafka's words, whatever Osprey supports.</summary>
    [Theory]
    [InlineData("process.roles=broker", "either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of voters")]
    [InlineData("process.roles=broker|controller.quorum.voters=1@127.0.0.1:9093|controller.listener.names=CONTROLLER", "the node id 1 must not be included in the set of voters controller.quorum.voters={1}")]
    [InlineData("process.roles=broker|controller.quorum.voters=2@127.0.0.1:9093", "controller.listener.names must contain at least one value when running KRaft with just the broker role")]
    [InlineData("process.roles=broker|controller.quorum.voters=2@127.0.0.1:9093|controller.listener.names=CONTROLLER|listeners=PLAINTEXT://:9092,CONTROLLER://:9093|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role")]
    [InlineData("controller.quorum.voters=2@127.0.0.1:9093,3@127.0.0.1:9193", "If process.roles contains the 'controller' role, the node id 1 must be included in the set of voters controller.quorum.voters={2, 3}")]
    [InlineData("controller.quorum.voters=1@127.0.0.1:9093|controller.listener.names=CONTROLLER|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role")]
    [InlineData("controller.quorum.voters=1@127.0.0.1:9093", "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role")]
    [InlineData("process.roles=broker|controller.quorum.voters=2@127.0.0.1:9093|controller.listener.names=CONTROLLER", "Controller listener with name CONTROLLER defined in controller.listener.names not found in listener.security.protocol.map")]
    [InlineData("process.roles=controller|controller.quorum.voters=1@127.0.0.1:9093|listeners=PLAINTEXT://:9092,CONTROLLER://:9093|controller.listener.names=CONTROLLER|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller")]
    [InlineData("controller.quorum.voters=1@127.0.0.1", "Invalid value 1@127.0.0.1 for configuration controller.quorum.voters: '1@127.0.0.1' is not a voter")]
    [InlineData("controller.quorum.voters=1@a:9093,1@b:9093", "node 1 is named twice")]
    [InlineData("process.roles=", "for configuration process.roles")]
    [InlineData("inter.broker.listener.name=CONTROLLER|listeners=PLAINTEXT://:9092,CONTROLLER://:9093|controller.listener.names=CONTROLLER|listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are PLAINTEXT")]
    public void KRaftSettingsKafkaRefusesAreRefusedInItsWords(string sets, string message)
    {
        var e = Assert.Throws<BrokerConfigException>(() => BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, sets.Split('|'))));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    /// <summary>A combined node that is its own quorum over a CONTROLLER listener, with its rack.</summary>
    [Fact]
    public void ACombinedNodeWithAControllerListenerIsItsOwnQuorum()
    {
        var options = BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, [
            "node.id=2", "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193", "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "controller.quorum.voters=2@127.0.0.1:19193", "broker.rack=r1"]));
        Assert.Equal((NodeRoles.Broker | NodeRoles.Controller, "CONTROLLER", 19193, "PLAINTEXT", 19192, "r1"), (options.Roles, options.ControllerListenerName, options.ControllerListener!.Port, options.ListenerName, options.Listener.Port, options.Rack));
        Assert.Equal([new QuorumVoter(2, "127.0.0.1", 19193)], options.Voters);

        // Plain `osprey start`: no voters and no controller listener, its controller in-process.
        var plain = BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, []));
        Assert.Equal((0, (System.Net.IPEndPoint?)null, (string?)null), (plain.Voters.Count, plain.ControllerListener, plain.Rack));
    }

    [Fact]
    public void PropertiesEscapesAndSeparators()
    {
        var parsed = BrokerConfig.ParseProperties("a\\=b=c\\td\nkey value with spaces\n  e:\\u0041\n\n#x=y\n").ToList();
        Assert.Equal([("a=b", "c\td", 1), ("key", "value with spaces", 2), ("e", "A", 3)], parsed);
    }

    [Fact]
    public void OspreyStorageSettingsReachTheLogManager()
    {
        var defaults = new EffectiveConfigs(BrokerOptions.FromConfig(BrokerConfig.From())).LogManagerOptions();
        Assert.Equal((1L << 20, TimeSpan.FromMilliseconds(2), true), (defaults.WritebackBytes, defaults.GroupCommitInterval, defaults.DurableAppends));
        var set = new EffectiveConfigs(BrokerOptions.FromConfig(BrokerConfig.Load(null, NoEnvironment, ["osprey.log.writeback.bytes=0", "osprey.group.commit.interval.us=500"]))).LogManagerOptions();
        Assert.Equal((0L, TimeSpan.FromMicroseconds(500)), (set.WritebackBytes, set.GroupCommitInterval));
        Assert.Contains("osprey.log.writeback.bytes", Assert.Throws<BrokerConfigException>(() => BrokerConfig.Load(null, NoEnvironment, ["osprey.log.writeback.bytes=-1"])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionsComeFromListenersLogDirsAndNodeId()
    {
        var options = BrokerOptions.FromConfig(BrokerConfig.From(("listeners", "PLAINTEXT://127.0.0.1:19092"), ("advertised.listeners", "PLAINTEXT://broker.example:29092"), ("log.dirs", "/tmp/x"), ("node.id", "7")));
        Assert.Equal((19092, "broker.example", 29092, "/tmp/x", 7), (options.Listener.Port, options.AdvertisedHost, options.AdvertisedPort, options.DataDirectory, options.NodeId));
        Assert.Contains("listeners", Assert.Throws<BrokerConfigException>(() => BrokerOptions.FromConfig(BrokerConfig.From(("listeners", "SSL://x:1")))).Message, StringComparison.Ordinal);
        Assert.Contains("exactly one listener", Assert.Throws<BrokerConfigException>(() => BrokerOptions.FromConfig(BrokerConfig.From(("listeners", "PLAINTEXT://:1,OTHER://:2"), ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT")))).Message, StringComparison.Ordinal);
        Assert.Contains("broker.id", Assert.Throws<BrokerConfigException>(() => BrokerOptions.FromConfig(BrokerConfig.From(("broker.id", "3")))).Message, StringComparison.Ordinal);
    }
}

public class BrokerConfigTests
{
    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task StaticBrokerSettingsAreTheTopicDefaults()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("log.retention.hours", "2"), ("message.max.bytes", "2000")) });
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "defaults", NumPartitions = 1 }]);
        var entries = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "defaults" }])).Entries;
        Assert.Equal(("7200000", ConfigSource.StaticBrokerConfig), (entries["retention.ms"].Value, entries["retention.ms"].Source));
        // As Kafka lists them: what is set, and the default of log.retention.ms only (it has none), not the hours'.
        Assert.Equal(
            [("log.retention.hours", "2", ConfigSource.StaticBrokerConfig)],
            entries["retention.ms"].Synonyms.Select(s => (s.Name, s.Value, s.Source)));
        Assert.Equal("2000", entries["max.message.bytes"].Value);
        var log = broker.Server.Logs.Get("defaults", 0)!;
        Assert.Equal((7_200_000L, 2000), (log.Config.RetentionMs, log.Config.MaxMessageBytes));

        var brokerEntries = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }])).Entries;
        Assert.Equal(("2", ConfigSource.StaticBrokerConfig, true), (brokerEntries["log.retention.hours"].Value, brokerEntries["log.retention.hours"].Source, brokerEntries["log.retention.hours"].IsReadOnly));
        Assert.Equal(("7200000", ConfigSource.StaticBrokerConfig), (brokerEntries["log.retention.ms"].Value, brokerEntries["log.retention.ms"].Source));
        Assert.Equal((ConfigSource.DefaultConfig, true), (brokerEntries["num.partitions"].Source, brokerEntries["num.partitions"].IsReadOnly));
    }

    /// <summary>
    /// A broker's DescribeConfigs lists every setting Kafka has (Confluent.Kafka's own tests look for
    /// num.network.threads), with Kafka's default or the value the config gave, passwords without their value, and
    /// broker.id copied from node.id (it was -1 for node.id 0).
    /// </summary>
    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task ABrokerDescribesEverySettingKafkaHas()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { NodeId = 0, Config = BrokerConfig.From(("node.id", "0"), ("num.io.threads", "4")) });
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        var entries = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "0" }])).Entries;
        Assert.Empty(KafkaBrokerConfigs.All.Keys.Where(name => !entries.ContainsKey(name)));
        Assert.True(entries.Count >= 289, $"{entries.Count} entries");
        Assert.Equal(("3", ConfigSource.DefaultConfig, true), (entries["num.network.threads"].Value, entries["num.network.threads"].Source, entries["num.network.threads"].IsReadOnly));
        Assert.Equal(("4", ConfigSource.StaticBrokerConfig), (entries["num.io.threads"].Value, entries["num.io.threads"].Source));
        Assert.Equal("0", entries["broker.id"].Value);
        Assert.Equal("0", entries["node.id"].Value);
        Assert.True(entries["delegation.token.secret.key"].IsSensitive);
        Assert.Null(entries["delegation.token.secret.key"].Value);
        Assert.True(entries.ContainsKey("osprey.acks.all.fsync"));
    }

    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task DynamicBrokerDefaultsReachEveryTopicAndSurviveRestart()
    {
        var broker = await TestBroker.StartAsync();
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "follows", NumPartitions = 2 }, new TopicSpecification { Name = "own", NumPartitions = 1, Configs = new() { ["retention.ms"] = "42" } }]);
            using var raw = await RawConnection.OpenAsync(broker.Server.Port);
            Assert.Equal(0, await AlterRawAsync(raw, "", "log.retention.ms", "1234"));
            Assert.Equal(1234, broker.Server.Logs.Get("follows", 1)!.Config.RetentionMs);
            Assert.Equal(42, broker.Server.Logs.Get("own", 0)!.Config.RetentionMs);
            var retention = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "follows" }])).Entries["retention.ms"];
            Assert.Equal(("1234", ConfigSource.DynamicDefaultBrokerConfig), (retention.Value, retention.Source));

            await AlterBrokerAsync(admin, "1", "log.retention.ms", "999");
            Assert.Equal(999, broker.Server.Logs.Get("follows", 0)!.Config.RetentionMs);
            await raw.SendAsync(new DescribeConfigsRequest { Resources = [new() { ResourceType = 4, ResourceName = "" }] }, 4, 9);
            var clusterDefaults = Assert.Single((await raw.ReceiveAsync<DescribeConfigsResponse>(4)).Body.Results).Configs;
            Assert.Equal(("log.retention.ms", "1234", (sbyte)ConfigSource.DynamicDefaultBrokerConfig), Assert.Single(clusterDefaults.Select(c => (c.Name, c.Value, c.ConfigSource))));

            Assert.Equal((short)Osprey.Protocol.ErrorCode.InvalidRequest, await AlterRawAsync(raw, "", "num.partitions", "3"));
            Assert.Equal((short)Osprey.Protocol.ErrorCode.InvalidRequest, await AlterRawAsync(raw, "", "log.retention.ms", "never"));
            Assert.Equal((short)Osprey.Protocol.ErrorCode.InvalidRequest, await AlterRawAsync(raw, "2", "log.retention.ms", "5"));
        }

        await broker.Server.DisposeAsync();
        await using (var restarted = await TestBroker.StartAsync(o => o with { DataDirectory = broker.Server.Options.DataDirectory }))
        {
            Assert.Equal(999, restarted.Server.Logs.Get("follows", 0)!.Config.RetentionMs);
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = restarted.Bootstrap }).Build();
            await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [new ConfigResource { Type = ResourceType.Broker, Name = "1" }] = [new ConfigEntry { Name = "log.retention.ms", IncrementalOperation = AlterConfigOpType.Delete }],
            });
            Assert.Equal(1234, restarted.Server.Logs.Get("follows", 0)!.Config.RetentionMs);
        }
    }

    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task DeleteTopicEnableFalseRefusesDeletion()
    {
        await using var broker = await TestBroker.StartAsync(o => o with { Config = BrokerConfig.From(("delete.topic.enable", "false")) });
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "kept", NumPartitions = 1 }]);
        var e = await Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync(["kept"]));
        Assert.Equal(ErrorCode.TopicDeletionDisabled, Assert.Single(e.Results).Error.Code);
        Assert.NotNull(broker.Server.Logs.Get("kept", 0));
    }

    [Fact(Timeout = TestLimits.ProcessTimeout)]
    public async Task OspreyStartTakesAFileEnvironmentAndSetAndRefusesUnknownSettings()
    {
        using (var refused = OspreyProcessTests.Launch(["start", "--set", "no.such.thing=1"]))
        {
            var error = await refused.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await refused.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("no.such.thing", error, StringComparison.Ordinal);
        }

        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-config-process-" + Guid.NewGuid().ToString("N"));
        var file = Path.GetTempFileName();
        File.WriteAllText(file, "num.partitions=3\nlog.retention.ms=1000\n");
        var port = OspreyProcessTests.FreePortForTests();
        using var broker = await OspreyProcessTests.StartAsync(dataDir, port, ["--config", file, "--set", "log.retention.ms=3000"], new() { ["OSPREY_LOG_SEGMENT_BYTES"] = "2097152", ["OSPREY_LOG_RETENTION_MS"] = "2000" });
        try
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = $"127.0.0.1:{port}" }).Build();
            var entries = Assert.Single(await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }])).Entries;
            Assert.Equal(("3", "3000", "2097152"), (entries["num.partitions"].Value, entries["log.retention.ms"].Value, entries["log.segment.bytes"].Value));
            Assert.All(new[] { "num.partitions", "log.retention.ms", "log.segment.bytes" }, n => Assert.Equal(ConfigSource.StaticBrokerConfig, entries[n].Source));
        }
        finally
        {
            broker.Kill(entireProcessTree: true);
            await broker.WaitForExitAsync(CancellationToken.None);
            File.Delete(file);
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static async Task<short> AlterRawAsync(RawConnection raw, string broker, string name, string value)
    {
        await raw.SendAsync(new IncrementalAlterConfigsRequest { Resources = [new() { ResourceType = 4, ResourceName = broker, Configs = [new() { Name = name, ConfigOperation = 0, Value = value }] }] }, 1, 7);
        return Assert.Single((await raw.ReceiveAsync<IncrementalAlterConfigsResponse>(1)).Body.Responses).ErrorCode;
    }

    private static Task AlterBrokerAsync(IAdminClient admin, string broker, string name, string value) =>
        admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Broker, Name = broker }] = [new ConfigEntry { Name = name, Value = value, IncrementalOperation = AlterConfigOpType.Set }],
        });
}
