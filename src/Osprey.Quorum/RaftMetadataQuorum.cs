using System.Net;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;

namespace Osprey.Quorum;

/// <summary>How a node takes part in the metadata quorum.</summary>
public sealed record RaftQuorumOptions
{
    public required int NodeId { get; init; }

    /// <summary>controller.quorum.voters (this node among them).</summary>
    public required IReadOnlyList<QuorumVoter> Voters { get; init; }

    /// <summary>Where the Raft log and snapshots live (data/__cluster_metadata-raft).</summary>
    public required string Directory { get; init; }

    /// <summary>controller.quorum.election.timeout.ms: the least time without a leader before a voter stands (at most twice that).</summary>
    public int ElectionTimeoutMs { get; init; } = 1000;

    /// <summary>controller.quorum.request.timeout.ms.</summary>
    public int RequestTimeoutMs { get; init; } = 2000;

    /// <summary>metadata.log.max.record.bytes.between.snapshots.</summary>
    public long SnapshotBytes { get; init; } = 20 * 1024 * 1024;

    /// <summary>metadata.log.max.snapshot.interval.ms.</summary>
    public long SnapshotIntervalMs { get; init; } = 3_600_000;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// Raft over the node's CONTROLLER listener (whose connection handler feeds this transport); null runs DotNext's
    /// own TCP listener on this node's voter address instead.
    /// </summary>
    public ControllerPortTransport? Transport { get; init; }

    /// <summary>
    /// The cluster id this node would give a new quorum (its meta.properties' id, or a new one): the first leader of a
    /// quorum that has none records its own as the first entry, and every node adopts the recorded one.
    /// </summary>
    public string ProposedClusterId { get; init; } = MetaProperties.NewKafkaUuid();
}

/// <summary>
/// The metadata quorum of a cluster: the same records and contract as <see cref="MetadataLog"/>, replicated and
/// elected by DotNext's Raft (its write-ahead log fsyncs every append and commit). Writes run on the leader only, one at
/// a time: the decision runs on an image that holds every committed entry (a new leader first waits for its read
/// barrier), its records become one entry whose metadata offsets follow the image's, and the write returns once that
/// entry is committed, applied and published here. Every voter applies the same entries in the same order.
/// </summary>
public sealed partial class RaftMetadataQuorum : IMetadataQuorum, IAsyncDisposable
{
    private readonly RaftCluster _cluster;
    private readonly WriteAheadLog _wal;
    private readonly MetadataStateMachine _state;
    private readonly IReadOnlyDictionary<EndPoint, int> _ids;
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource<string> _clusterId = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _identity = Task.CompletedTask;
    private long _barrierTerm = -1;

    private RaftMetadataQuorum(RaftCluster cluster, WriteAheadLog wal, MetadataStateMachine state, IReadOnlyDictionary<EndPoint, int> ids, TimeProvider time, ILogger logger)
    {
        _cluster = cluster;
        _wal = wal;
        _state = state;
        _ids = ids;
        _time = time;
        _logger = logger;
    }

    public int NodeId { get; private init; }

    public ClusterImage Image => _state.Image;

    public long EndOffset => _state.Image.LastOffset + 1;

    /// <summary>The Raft term: the epoch of the current leadership (Kafka's controller epoch).</summary>
    public long Term => _cluster.Term;

    /// <summary>The node that leads the quorum as far as this one knows (null: none now).</summary>
    public int? LeaderId => _cluster.Leader is { } leader && _ids.TryGetValue(leader.EndPoint, out var id) ? id : null;

    /// <summary>
    /// Whether this node leads and has taken office: DotNext names a node leader a moment before its leadership token
    /// is valid, and a write in that moment could not be tied to the leadership.
    /// </summary>
    public bool IsLeader => _cluster.Leader is { IsRemote: false } && !_cluster.LeadershipToken.IsCancellationRequested;

    public bool IsActiveController => IsLeader;

    public int? ActiveControllerId => LeaderId;

    /// <summary>
    /// On the leader: the leadership and this voter's own progress. DotNext keeps the other voters' replication state
    /// to itself, so they are -1 here; the controller fills them in from the brokers' heartbeats, which carry the
    /// metadata offset each node has applied.
    /// </summary>
    public QuorumStatus Status()
    {
        if (!IsLeader)
        {
            throw NotController();
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var end = _state.Image.LastOffset + 1;
        var voters = _ids.Values.Order().Select(id => id == NodeId ? new VoterStatus(id, end, now, now) : new VoterStatus(id, -1, -1, -1));
        return new QuorumStatus(NodeId, Term, end, [.. voters]);
    }

    /// <summary>Completes with the cluster id once the quorum has one recorded (the first leader writes it).</summary>
    public Task<string> WhenClusterIdKnownAsync(CancellationToken cancellationToken) => _clusterId.Task.WaitAsync(cancellationToken);

    /// <summary>
    /// Until the image holds a cluster id: a leader records the proposed one (if no leader before it did), every node
    /// watches for it. Polled, because it is needed once per quorum and DotNext names a leader before it may write.
    /// </summary>
    private async Task RecordClusterIdAsync(string proposed)
    {
        while (!_stopping.IsCancellationRequested)
        {
            if (_state.Image.ClusterId is { } known)
            {
                _clusterId.TrySetResult(known);
                return;
            }

            if (IsLeader)
            {
                try
                {
                    await UpdateAsync(image => image.ClusterId is null ? ([new ClusterIdentityRecord { ClusterId = proposed }], 0) : ((IReadOnlyList<IVersionedMessage>)[], 0), _stopping.Token).ConfigureAwait(false);
                    continue;
                }
                catch (Exception e) when (e is NotControllerException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
                {
                    // Leadership moved, or the node is stopping: look again.
                }
            }

            try
            {
                await Task.Delay(20, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Restores the newest snapshot, applies the committed entries after it, and joins the quorum. A damaged
    /// snapshot or entry stops the start with <see cref="CorruptMetadataException"/>.
    /// </summary>
    public static async Task<RaftMetadataQuorum> StartAsync(RaftQuorumOptions options, ILoggerFactory? loggers = null, CancellationToken cancellationToken = default)
    {
        var endpoints = options.Voters.ToDictionary(v => v.Id, v => new IPEndPoint(Resolve(v.Host), v.Port));
        if (!endpoints.TryGetValue(options.NodeId, out var local))
        {
            throw new ArgumentException($"Node {options.NodeId} is not among the voters {string.Join(",", options.Voters)}.", nameof(options));
        }

        var snapshots = Directory.CreateDirectory(Path.Combine(options.Directory, "snapshots"));
        var state = new MetadataStateMachine(snapshots, options.SnapshotBytes, options.SnapshotIntervalMs, options.Time);
        WriteAheadLog? wal = null;
        try
        {
            await state.RestoreAsync(cancellationToken).ConfigureAwait(false);
            wal = new WriteAheadLog(
                new WriteAheadLog.Options
                {
                    // Every append and commit is flushed before it returns (DotNext 6.12 always does this; FlushOnCommit
                    // is obsolete): a voter never acknowledges an entry it could lose.
                    Location = Path.Combine(options.Directory, "log"),
                    HashAlgorithm = WriteAheadLog.IntegrityHashAlgorithm.Crc32,
                },
                state);
            try
            {
                await wal.InitializeAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WriteAheadLog.HashMismatchException or WriteAheadLog.MissingPageException)
            {
                throw new CorruptMetadataException(
                    $"The metadata quorum log in {Path.Combine(options.Directory, "log")} is damaged ({e.Message}); node {options.NodeId} will not start on metadata it cannot trust. Restore the directory from a backup, or remove it to have this voter copy the log from the others.",
                    e);
            }
        }
        catch
        {
            if (wal is not null)
            {
                await wal.DisposeAsync().ConfigureAwait(false);
            }

            await state.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var members = new QuorumEndPoints(endpoints.Values.Cast<EndPoint>());
        var logging = loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        var requestTimeout = TimeSpan.FromMilliseconds(options.RequestTimeoutMs);
        RaftCluster.NodeConfiguration configuration = options.Transport is { } transport
            ? new RaftCluster.CustomTransportConfiguration(local, transport, transport)
            {
                ConfigurationStorage = members,
                LowerElectionTimeout = options.ElectionTimeoutMs,
                UpperElectionTimeout = options.ElectionTimeoutMs * 2,
                RequestTimeout = requestTimeout,
                ColdStart = false,
                LoggerFactory = logging,
            }
            : new RaftCluster.TcpConfiguration(local)
            {
                ConfigurationStorage = members,
                LowerElectionTimeout = options.ElectionTimeoutMs,
                UpperElectionTimeout = options.ElectionTimeoutMs * 2,
                RequestTimeout = requestTimeout,
                ColdStart = false,
                LoggerFactory = logging,
            };
        var cluster = new RaftCluster(configuration) { AuditTrail = wal };
        var quorum = new RaftMetadataQuorum(
            cluster,
            wal,
            state,
            endpoints.ToDictionary(e => (EndPoint)e.Value, e => e.Key),
            options.Time,
            (loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger<RaftMetadataQuorum>())
        {
            NodeId = options.NodeId,
        };
        try
        {
            await cluster.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await quorum.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        quorum._identity = Task.Run(() => quorum.RecordClusterIdAsync(options.ProposedClusterId), CancellationToken.None);
        return quorum;
    }

    public void AddPublisher(IMetadataPublisher publisher)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        _state.AddPublisher(publisher);
    }

    public async Task<ClusterImage> AppendAsync(IReadOnlyList<IVersionedMessage> records, CancellationToken cancellationToken = default)
    {
        var (image, _) = await UpdateAsync(_ => (records, 0), cancellationToken).ConfigureAwait(false);
        return image;
    }

    public async Task<(ClusterImage Image, T Result)> UpdateAsync<T>(
        Func<ClusterImage, (IReadOnlyList<IVersionedMessage> Records, T Result)> decide,
        CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var leadership = _cluster.LeadershipToken;
            if (!IsLeader || leadership.IsCancellationRequested)
            {
                throw NotController();
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, leadership);
            try
            {
                // A new leader decides only on an image that holds every entry committed before its term.
                var term = _cluster.Term;
                if (Volatile.Read(ref _barrierTerm) != term)
                {
                    await _cluster.ApplyReadBarrierAsync(linked.Token).ConfigureAwait(false);
                    Volatile.Write(ref _barrierTerm, term);
                }

                var image = _state.Image;
                var (records, result) = decide(image);
                if (records.Count == 0)
                {
                    return (image, result);
                }

                using var builder = new RecordBatchBuilder { BaseOffset = image.LastOffset + 1 };
                var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
                foreach (var record in records)
                {
                    builder.Append(now, null, MetadataRecordCodec.Serialize(record));
                }

                var payload = builder.ToArray();
                await _cluster.ReplicateAsync(payload, null, linked.Token).ConfigureAwait(false);
                await _state.WhenAppliedAsync(image.LastOffset + records.Count, linked.Token).ConfigureAwait(false);
                return (_state.Image, result);
            }
            catch (OperationCanceledException) when (leadership.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw NotController();
            }
            catch (InvalidOperationException e) when (!IsLeader)
            {
                LogLostLeadership(_logger, e.Message);
                throw NotController();
            }
        }
        finally
        {
            _writer.Release();
        }
    }

    private NotControllerException NotController() => LeaderId switch
    {
        { } id when id == NodeId => new(id, $"Node {NodeId} is taking office as the active controller; try again."),
        { } id => new(id, $"Node {NodeId} is not the active controller; node {id} is."),
        null => new(null, $"Node {NodeId} is not the active controller, and the quorum has no leader now."),
    };

    private static IPAddress Resolve(string host) =>
        IPAddress.TryParse(host, out var address) ? address : Dns.GetHostAddresses(host).First();

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _identity.ConfigureAwait(false);
        _clusterId.TrySetCanceled();
        try
        {
            await _cluster.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
        {
            // Not started, or stopped already.
        }

        _cluster.Dispose();
        await _wal.DisposeAsync().ConfigureAwait(false);
        await _state.DisposeAsync().ConfigureAwait(false);
        _writer.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A metadata write ended with the leadership: {Reason}")]
    private static partial void LogLostLeadership(ILogger logger, string reason);
}
