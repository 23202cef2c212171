using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Osprey.Broker.Config;
using Osprey.Broker.Control;
using Osprey.Broker.Fetching;
using Osprey.Broker.Groups;
using Osprey.Broker.Lifecycle;
using Osprey.Broker.Transactions;
using Osprey.Broker.Handlers;
using Osprey.Broker.Network;
using Osprey.Broker.Producers;
using Osprey.Broker.Replication;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Quorum;
using Osprey.Storage;

namespace Osprey.Broker;

/// <summary>
/// A running broker: Kestrel listening with <see cref="KafkaConnectionHandler"/>, the request handlers, and the
/// logs of its data directory, which it holds a lock on.
/// </summary>
public sealed partial class BrokerServer : IAsyncDisposable
{
    public const string LockFileName = ".lock";

    /// <summary>The DI key of the controller listener's handlers and dispatcher.</summary>
    public const string ControllerListenerKey = "controller";

    private readonly WebApplication _app;
    private readonly ListenOptions _listen;
    private readonly ListenOptions? _controllerListen;
    private readonly FileStream _lock;
    private readonly BrokerLifecycleManager _lifecycle;
    private readonly ReplicaManager _replicas;
    private RaftMetadataQuorum? _quorum;

    private BrokerServer(WebApplication app, ListenOptions listen, ListenOptions? controllerListen, BrokerIdentity identity, BrokerOptions options, FileStream lockFile, LogManager logs)
    {
        _app = app;
        _listen = listen;
        _controllerListen = controllerListen;
        _lifecycle = app.Services.GetRequiredService<BrokerLifecycleManager>();
        _replicas = app.Services.GetRequiredService<ReplicaManager>();
        _lock = lockFile;
        Identity = identity;
        Options = options;
        Logs = logs;
    }

    public LogManager Logs { get; }

    /// <summary>The broker's services (the group coordinator and the rest), for tests and embedding.</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Cancelled when the host is asked to stop (IHostApplicationLifetime.StopApplication). Signals are the caller's to
    /// handle (osprey start turns SIGINT and SIGTERM into DisposeAsync).
    /// </summary>
    public CancellationToken ShutdownRequested => _app.Lifetime.ApplicationStopping;

    public BrokerOptions Options { get; }

    public BrokerIdentity Identity { get; }

    /// <summary>The bound port (the real one when the options asked for port 0).</summary>
    public int Port => _listen.IPEndPoint!.Port;

    /// <summary>The bound port of the controller listener (null when the node has none).</summary>
    public int? ControllerPort => _controllerListen?.IPEndPoint!.Port;

    public static async Task<BrokerServer> StartAsync(BrokerOptions options, ILoggerProvider? logging = null, CancellationToken cancellationToken = default)
    {
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dataDirectory);
        var lockFile = AcquireLock(dataDirectory);
        LogManager? logs = null;
        RaftMetadataQuorum? raft = null;
        ReplicaManager? replicas = null;
        try
        {
            // The directory's identity first: a directory of another node is refused before anything is opened. A
            // node of a cluster may not know its cluster yet: it learns the id from the quorum once that has a leader.
            var clusterMode = options.IsCluster;
            var meta = clusterMode ? MetaProperties.Load(dataDirectory, options.NodeId) : MetaProperties.LoadOrCreate(dataDirectory, options.NodeId);
            var configs = new EffectiveConfigs(options);
            logs = new LogManager(dataDirectory, configs.LogManagerOptions(), TimeProvider.System, logging?.CreateLogger("Osprey.Storage"));
            IMetadataQuorum metadata;
            ControllerPortTransport? transport = null;
            if (clusterMode)
            {
                var loggers = QuorumLoggers(logging);
                transport = new ControllerPortTransport(loggers);
                raft = await RaftMetadataQuorum.StartAsync(
                    new RaftQuorumOptions
                    {
                        NodeId = options.NodeId,
                        Voters = options.Voters,
                        Directory = Path.Combine(dataDirectory, RaftDirectoryName),
                        ElectionTimeoutMs = options.Config.GetInt("controller.quorum.election.timeout.ms"),
                        RequestTimeoutMs = options.Config.GetInt("controller.quorum.request.timeout.ms"),
                        SnapshotBytes = options.Config.GetLong("metadata.log.max.record.bytes.between.snapshots"),
                        SnapshotIntervalMs = options.Config.GetLong("metadata.log.max.snapshot.interval.ms"),
                        Transport = transport,
                        ProposedClusterId = meta?.ClusterId ?? MetaProperties.NewKafkaUuid(),
                    },
                    loggers,
                    cancellationToken).ConfigureAwait(false);
                metadata = raft;
            }
            else
            {
                metadata = MetadataLog.Open(logs, TimeProvider.System, options.NodeId);
            }

            // Every partition of every topic the metadata knows gets its log opened (recovered if need be). The
            // publisher first, so a change applied meanwhile (a quorum catching up) is not missed.
            var opening = System.Diagnostics.Stopwatch.GetTimestamp();
            var topicLogs = new TopicLogs(logs, configs, options.NodeId);
            metadata.AddPublisher(new MetadataPublisher(topicLogs, logs, options.NodeId));
            replicas = new ReplicaManager(logs, options, logging?.CreateLogger(typeof(ReplicaManager).FullName!) ?? NullLogger.Instance);
            metadata.AddPublisher(replicas);
            if (DescriptorShortageException.CheckRoomFor(metadata.Image.Topics.Values.Sum(t => t.Partitions.Count)) is { } shortage)
            {
                throw shortage;
            }

            foreach (var topic in metadata.Image.Topics.Values)
            {
                topicLogs.Open(metadata.Image, topic);
            }

            replicas.Load(metadata.Image);

            var startup = logging?.CreateLogger("Osprey.Broker.Startup") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
            LogOpened(
                startup,
                logs.Logs.Count,
                metadata.Image.Topics.Count,
                logs.Logs.Values.Sum(l => l.LogEndOffset - l.LogStartOffset),
                meta is null or { Created: true } ? "in a new data directory" : logs.WasCleanShutdown ? "after a clean stop" : "after an unclean stop: logs past their recovery point were scanned",
                (long)System.Diagnostics.Stopwatch.GetElapsedTime(opening).TotalMilliseconds);
            var descriptorLimit = NativeFileSystem.OpenFileLimit();
            var descriptorsOpen = NativeFileSystem.OpenFileCount();
            if (descriptorsOpen > descriptorLimit * 3 / 4)
            {
                LogFewDescriptorsLeft(startup, descriptorsOpen, descriptorLimit, logs.Logs.Count);
            }

            var server = await StartServerAsync(options, meta, logging, lockFile, logs, metadata, raft, transport, configs, topicLogs, replicas, cancellationToken).ConfigureAwait(false);
            logs.StartBackgroundTasks();
            return server;
        }
        catch
        {
            // The cause is what the caller hears about: a failure while tidying up (the disk that failed the start may
            // fail the close too) must not replace it.
            try
            {
                if (raft is not null)
                {
                    await raft.DisposeAsync().ConfigureAwait(false);
                }

                if (replicas is not null)
                {
                    await replicas.DisposeAsync().ConfigureAwait(false);
                }

                if (logs is not null)
                {
                    await logs.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception)
            {
                // Swallowed: the cause is rethrown below.
            }

            await lockFile.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Where a cluster node keeps its Raft log and snapshots (not a partition directory: no "-N" suffix).</summary>
    public const string RaftDirectoryName = "__cluster_metadata-raft";

    /// <summary>DotNext's loggers: through the broker's provider, its per-retry warnings (with stack traces) left out.</summary>
    private static ILoggerFactory QuorumLoggers(ILoggerProvider? logging) =>
        logging is null
            ? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance
            : LoggerFactory.Create(b => b.AddProvider(logging).AddFilter("DotNext", LogLevel.Error));

    /// <summary>An exclusive lock on data/.lock: a second broker on the same data directory refuses to start.</summary>
    private static FileStream AcquireLock(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, LockFileName);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"The data directory {dataDirectory} is in use by another Osprey broker (cannot lock {path}).", e);
        }
    }

    private static async Task<BrokerServer> StartServerAsync(
        BrokerOptions options, MetaProperties? meta, ILoggerProvider? logging, FileStream lockFile, LogManager logs, IMetadataQuorum metadata,
        RaftMetadataQuorum? raft, ControllerPortTransport? transport, EffectiveConfigs configs, TopicLogs topicLogs, ReplicaManager replicas, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is not null)
        {
            builder.Logging.AddProvider(logging);
        }

        // A cluster node's id is the quorum's, known once adopted below (its meta.properties may name another cluster).
        var identity = new BrokerIdentity { NodeId = options.NodeId, ClusterId = raft is null ? meta!.ClusterId : "" };
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(identity);

        // The host does not stop itself on SIGINT/SIGTERM: whoever runs the broker calls DisposeAsync, which first
        // hands a cluster node's leaderships over (the controlled shutdown needs its connections, which the host's
        // stop would close) and only then stops the host.
        builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, CallerStoppedLifetime>();
        builder.Services.AddSingleton(logs);
        if (metadata is MetadataLog single)
        {
            builder.Services.AddSingleton(single);
        }

        builder.Services.AddSingleton(metadata);
        builder.Services.AddSingleton(configs);
        builder.Services.AddSingleton(topicLogs);
        builder.Services.AddSingleton(replicas);
        builder.Services.AddSingleton<ReplicaFetcherManager>();
        builder.Services.AddSingleton<IsrChangeSender>();
        builder.Services.AddSingleton<AppendNotifier>();
        builder.Services.AddSingleton<TopicCreator>();
        builder.Services.AddSingleton<IRequestHandler, CreateTopicsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DeleteTopicsHandler>();
        builder.Services.AddSingleton<IRequestHandler, CreatePartitionsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeClusterHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeConfigsHandler>();
        builder.Services.AddSingleton<ConfigUpdater>();
        builder.Services.AddSingleton<IRequestHandler, AlterConfigsHandler>();
        builder.Services.AddSingleton<IRequestHandler, IncrementalAlterConfigsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DeleteRecordsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeLogDirsHandler>();
        builder.Services.AddSingleton<IRequestHandler, OffsetForLeaderEpochHandler>();
        builder.Services.AddSingleton<IRequestHandler, ProduceHandler>();
        builder.Services.AddSingleton(new FetchSessionCache(options.Config.GetInt("max.incremental.fetch.session.cache.slots"), options.Time));
        builder.Services.AddSingleton<IRequestHandler, FetchHandler>();
        builder.Services.AddSingleton<IRequestHandler, ListOffsetsHandler>();
        builder.Services.AddSingleton<ProducerIdManager>();
        builder.Services.AddSingleton<IRequestHandler, InitProducerIdHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeProducersHandler>();
        builder.Services.AddSingleton<IRequestHandler>(sp => new ApiVersionsHandler(() => sp.GetRequiredService<RequestDispatcher>().Handlers));
        builder.Services.AddSingleton<IRequestHandler, MetadataHandler>();
        builder.Services.AddSingleton<InternalTopicServices>();
        builder.Services.AddSingleton<GroupCoordinator>();
        builder.Services.AddSingleton<IRequestHandler, FindCoordinatorHandler>();
        builder.Services.AddSingleton<IRequestHandler, JoinGroupHandler>();
        builder.Services.AddSingleton<IRequestHandler, SyncGroupHandler>();
        builder.Services.AddSingleton<IRequestHandler, HeartbeatHandler>();
        builder.Services.AddSingleton<IRequestHandler, LeaveGroupHandler>();
        builder.Services.AddSingleton<IRequestHandler, OffsetCommitHandler>();
        builder.Services.AddSingleton<IRequestHandler, OffsetFetchHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeGroupsHandler>();
        builder.Services.AddSingleton<IRequestHandler, ListGroupsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DeleteGroupsHandler>();
        builder.Services.AddSingleton<IRequestHandler, OffsetDeleteHandler>();
        builder.Services.AddSingleton<TransactionCoordinator>();
        builder.Services.AddSingleton<IRequestHandler, AddPartitionsToTxnHandler>();
        builder.Services.AddSingleton<IRequestHandler, AddOffsetsToTxnHandler>();
        builder.Services.AddSingleton<IRequestHandler, EndTxnHandler>();
        builder.Services.AddSingleton<IRequestHandler, TxnOffsetCommitHandler>();
        builder.Services.AddSingleton<IRequestHandler, WriteTxnMarkersHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeTransactionsHandler>();
        builder.Services.AddSingleton<IRequestHandler, ListTransactionsHandler>();
        builder.Services.AddSingleton<IRequestHandler, ConsumerGroupHeartbeatHandler>();
        builder.Services.AddSingleton<IRequestHandler, ConsumerGroupDescribeHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeTopicPartitionsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeAclsHandler>();
        builder.Services.AddSingleton<IRequestHandler, CreateAclsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DeleteAclsHandler>();
        builder.Services.AddSingleton<IRequestHandler, ElectLeadersHandler>();
        builder.Services.AddSingleton<IRequestHandler, AlterReplicaLogDirsHandler>();
        builder.Services.AddSingleton<IRequestHandler, AlterPartitionReassignmentsHandler>();
        builder.Services.AddSingleton<IRequestHandler, ListPartitionReassignmentsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeUserScramCredentialsHandler>();
        builder.Services.AddSingleton<IRequestHandler, AlterUserScramCredentialsHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeQuorumHandler>();
        builder.Services.AddSingleton<IRequestHandler, DescribeClientQuotasHandler>();
        builder.Services.AddSingleton(sp => new RequestDispatcher(sp.GetServices<IRequestHandler>(), sp.GetRequiredService<ILogger<RequestDispatcher>>()));

        // The controller: its decisions, and the APIs its CONTROLLER listener serves (a dispatcher of their own).
        builder.Services.AddSingleton<ControllerService>();
        builder.Services.AddKeyedSingleton<IRequestHandler, BrokerRegistrationHandler>(ControllerListenerKey);
        builder.Services.AddKeyedSingleton<IRequestHandler, BrokerHeartbeatHandler>(ControllerListenerKey);
        builder.Services.AddKeyedSingleton<IRequestHandler, AllocateProducerIdsHandler>(ControllerListenerKey);
        builder.Services.AddKeyedSingleton<IRequestHandler, AlterPartitionHandler>(ControllerListenerKey);

        // Requests that change metadata: decided by the active controller; a broker that is not it forwards them. The
        // controller listener serves them too (Kafka's tools reach them with --bootstrap-controller).
        builder.Services.AddSingleton<AdminForwarder>();
        builder.Services.AddSingleton<ImageWaiter>();
        builder.Services.AddSingleton<InterBrokerClient>();
        AddControllerListenerHandler<CreateTopicsHandler>(builder.Services);
        AddControllerListenerHandler<DeleteTopicsHandler>(builder.Services);
        AddControllerListenerHandler<CreatePartitionsHandler>(builder.Services);
        AddControllerListenerHandler<AlterConfigsHandler>(builder.Services);
        AddControllerListenerHandler<IncrementalAlterConfigsHandler>(builder.Services);
        AddControllerListenerHandler<AlterUserScramCredentialsHandler>(builder.Services);
        AddControllerListenerHandler<ElectLeadersHandler>(builder.Services);
        builder.Services.AddKeyedSingleton<IRequestHandler>(ControllerListenerKey, (sp, _) => ActivatorUtilities.CreateInstance<DescribeQuorumHandler>(sp, true));
        builder.Services.AddKeyedSingleton<IRequestHandler>(ControllerListenerKey, (sp, _) => new DescribeClusterHandler(
            identity, sp.GetRequiredService<IMetadataQuorum>(), options, sp.GetRequiredService<BrokerServerPorts>(), controllerListener: true));
        builder.Services.AddKeyedSingleton<IRequestHandler>(ControllerListenerKey, (sp, _) => new ApiVersionsHandler(() => sp.GetRequiredKeyedService<RequestDispatcher>(ControllerListenerKey).Handlers));
        builder.Services.AddKeyedSingleton(ControllerListenerKey, (sp, key) => new RequestDispatcher(sp.GetKeyedServices<IRequestHandler>(key), sp.GetRequiredService<ILogger<RequestDispatcher>>()));

        // The broker's standing with the controller: in-process on a node without a controller listener.
        builder.Services.AddSingleton<ServingGate>();
        builder.Services.AddSingleton<IControllerChannel>(sp => options.ControllerListener is null
            ? new LocalControllerChannel(sp.GetRequiredService<ControllerService>())
            : new NetworkControllerChannel(() => ControllerEndpoints(options, sp.GetRequiredService<BrokerServerPorts>()), $"osprey-broker-{options.NodeId}"));
        builder.Services.AddSingleton<BrokerServerPorts>();
        builder.Services.AddSingleton<BrokerLifecycleManager>();
        builder.Services.AddSingleton(new RequestMemoryPool(options.QueuedMaxRequestBytes));
        builder.Services.AddSingleton<ConnectionTracker>();
        builder.Services.AddSingleton<IMemoryPoolFactory<byte>, SocketBlockPoolFactory>();

        ListenOptions? listen = null;
        ListenOptions? controllerListen = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (options.MaxConnections < int.MaxValue)
            {
                kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
            }

            kestrel.Listen(options.Listener, l =>
            {
                listen = l;
                l.UseConnectionHandler<KafkaConnectionHandler>();
            });
            if (options.ControllerListener is { } controllerEndpoint)
            {
                kestrel.Listen(controllerEndpoint, l =>
                {
                    controllerListen = l;
                    l.Use(_ =>
                    {
                        var dispatcher = l.ApplicationServices.GetRequiredKeyedService<RequestDispatcher>(ControllerListenerKey);
                        var handler = ActivatorUtilities.CreateInstance<KafkaConnectionHandler>(l.ApplicationServices, dispatcher, ServingGate.AlwaysOpen);

                        // Raft shares the port: its connections open with a preamble; the rest are Kafka frames.
                        return transport is null ? handler.OnConnectedAsync : async connection =>
                        {
                            if (!await transport.TryServeAsync(connection).ConfigureAwait(false))
                            {
                                await handler.OnConnectedAsync(connection).ConfigureAwait(false);
                            }
                        };
                    });
                });
            }
        });

        var app = builder.Build();

        // The group coordinator starts loading __consumer_offsets now, not at the first group request.
        _ = app.Services.GetRequiredService<GroupCoordinator>();
        _ = app.Services.GetRequiredService<TransactionCoordinator>();
        _ = app.Services.GetRequiredService<ControllerService>();
        _ = app.Services.GetRequiredService<ReplicaFetcherManager>();
        _ = app.Services.GetRequiredService<IsrChangeSender>();
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (e.InnerException is AddressInUseException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException(
                $"Cannot listen on {options.ListenerName}://{options.Listener}{(options.ControllerListener is { } c ? $" or {options.ControllerListenerName}://{c}" : "")}: the address is already in use (another broker or program has that port; change it with --listeners).", e);
        }

        // What the listeners really bound, before anything that talks to the controller is created.
        app.Services.GetRequiredService<BrokerServerPorts>().Controller = controllerListen?.IPEndPoint!.Port;
        identity.Host = options.AdvertisedHost ?? HostOf(options.Listener);
        identity.Port = options.AdvertisedPort ?? listen!.IPEndPoint!.Port;
        var server = new BrokerServer(app, listen!, controllerListen, identity, options, lockFile, logs) { _quorum = raft };
        try
        {
            if (raft is not null)
            {
                // The quorum elects a leader over the listener just opened; its first leader records the cluster id.
                identity.ClusterId = await AdoptClusterIdAsync(raft, meta, options, cancellationToken).ConfigureAwait(false);
            }

            // The broker registers with the controller and serves clients once it is unfenced.
            await server._lifecycle.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await server.StopAppAsync().ConfigureAwait(false);
            throw;
        }

        return server;
    }

    /// <summary>A handler of the CONTROLLER listener that shares the broker's code but never forwards.</summary>
    private static void AddControllerListenerHandler<THandler>(IServiceCollection services)
        where THandler : IRequestHandler =>
        services.AddKeyedSingleton<IRequestHandler>(ControllerListenerKey, (sp, _) =>
            ActivatorUtilities.CreateInstance<THandler>(sp, sp.GetRequiredService<AdminForwarder>().ForControllerListener()));

    /// <summary>
    /// The cluster id the quorum recorded, checked against the one this data directory already belongs to (a directory
    /// of another cluster is refused), and written to a new directory's meta.properties.
    /// </summary>
    private static async Task<string> AdoptClusterIdAsync(RaftMetadataQuorum raft, MetaProperties? meta, BrokerOptions options, CancellationToken cancellationToken)
    {
        var clusterId = await raft.WhenClusterIdKnownAsync(cancellationToken).ConfigureAwait(false);
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        if (meta is null)
        {
            MetaProperties.Create(dataDirectory, options.NodeId, clusterId);
        }
        else if (meta.ClusterId != clusterId)
        {
            throw new DataDirectoryMismatchException(
                $"The data directory {dataDirectory} belongs to cluster {meta.ClusterId}, but the metadata quorum of controller.quorum.voters is cluster {clusterId}: give this node an empty data directory, or point it at its own cluster's voters.");
        }

        return clusterId;
    }

    /// <summary>The host to give others for a bound address: loopback for the any-address.</summary>
    internal static string HostOf(System.Net.IPEndPoint endpoint) =>
        endpoint.Address.Equals(System.Net.IPAddress.Any) || endpoint.Address.Equals(System.Net.IPAddress.IPv6Any) ? "127.0.0.1" : endpoint.Address.ToString();

    /// <summary>
    /// Where this node's broker finds the controllers: the voters, or, on a node that is its own quorum, its own
    /// controller listener (at the port it really bound).
    /// </summary>
    private static IReadOnlyList<(string Host, int Port)> ControllerEndpoints(BrokerOptions options, BrokerServerPorts ports) =>
        [.. ClusterView.Controllers(options, ports).Select(c => (c.Host, c.Port))];

    private async ValueTask StopAppAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Stops accepting, lets in-flight requests finish, then closes the logs cleanly (flush, checkpoints,
    /// clean-shutdown marker) and releases the data directory.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        // A cluster's broker first hands its leaderships to other in-sync replicas, so clients move without waiting
        // for its session to run out. A single node has no one to hand them to.
        if (_quorum is not null)
        {
            await _lifecycle.ControlledShutdownAsync(TimeSpan.FromMilliseconds(Options.BrokerSessionTimeoutMs)).ConfigureAwait(false);
        }

        await _lifecycle.DisposeAsync().ConfigureAwait(false);

        // The quorum before the host: its connections on the CONTROLLER listener end with it, so the host's stop
        // does not wait for them.
        if (Interlocked.Exchange(ref _quorum, null) is { } quorum)
        {
            await quorum.DisposeAsync().ConfigureAwait(false);
        }

        await StopAppAsync().ConfigureAwait(false);

        // The high watermarks are checkpointed while the logs are still open.
        await _replicas.DisposeAsync().ConfigureAwait(false);
        await Logs.DisposeAsync().ConfigureAwait(false);
        await _lock.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Opened {Logs} partition logs of {Topics} topics ({Records} offsets in all) {How}, in {Ms} ms")]
    private static partial void LogOpened(ILogger logger, int logs, int topics, long records, string how, long ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Open} of the {Limit} file descriptors this process may have are in use after opening {Logs} partition logs; raise the limit (ulimit -n, LimitNOFILE=) before connections or new partitions run out of them")]
    private static partial void LogFewDescriptorsLeft(ILogger logger, int open, long limit, int logs);
}

/// <summary>A host lifetime that leaves signals alone: the broker stops when its owner disposes it.</summary>
internal sealed class CallerStoppedLifetime : Microsoft.Extensions.Hosting.IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Ports known only once Kestrel has bound them (port 0 in tests).</summary>
public sealed class BrokerServerPorts
{
    public int? Controller { get; set; }
}
