using Microsoft.Extensions.Logging;
using Osprey.Controller;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Control;

/// <summary>
/// Hosts the <see cref="QuorumController"/> on a node of the metadata quorum. Only the active controller decides: its
/// decisions go through the quorum's serialized writes (so the controller's own state is touched by one decision at a
/// time), and a timer fences brokers whose session ran out. On any other node a controller request is answered
/// NOT_CONTROLLER, and the broker that sent it tries the next voter. Each time this node becomes the active
/// controller it starts afresh (brokers' sessions are not metadata). Controller requests reach it from the CONTROLLER
/// listener's handlers or, on a node without one, straight from its own broker (<see cref="LocalControllerChannel"/>).
/// </summary>
public sealed partial class ControllerService : IAsyncDisposable
{
    private readonly IMetadataQuorum _quorum;
    private readonly BrokerOptions _options;
    private readonly BrokerIdentity _identity;
    private readonly ILogger _logger;
    private readonly ITimer _fenceCheck;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, (long End, long AtMs)> _progress = new();
    private readonly Config.EffectiveConfigs _configs;
    private QuorumController? _controller;
    private long _nextBalanceMs;
    private int _checking;

    public ControllerService(IMetadataQuorum quorum, BrokerOptions options, BrokerIdentity identity, Config.EffectiveConfigs configs, ILogger<ControllerService> logger)
    {
        _configs = configs;
        _quorum = quorum;
        _options = options;
        _identity = identity;
        _logger = logger;

        // Often enough that a silent broker is fenced within a fraction of a heartbeat interval after its session ends.
        var interval = TimeSpan.FromMilliseconds(Math.Clamp(options.BrokerHeartbeatIntervalMs / 2, 10, 1000));
        _fenceCheck = TimeProvider.System.CreateTimer(_ => _ = FenceExpiredAsync(), null, interval, interval);
    }

    /// <summary>Answers one controller request (the APIs the CONTROLLER listener serves to brokers).</summary>
    public async Task<IApiMessage> HandleAsync(IApiMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return request switch
            {
                BrokerRegistrationRequest registration => await DecideAsync((c, image) => c.Register(image, registration), cancellationToken).ConfigureAwait(false),
                BrokerHeartbeatRequest heartbeat => Track(heartbeat, await DecideAsync((c, image) => c.Heartbeat(image, heartbeat), cancellationToken).ConfigureAwait(false)),
                AlterPartitionRequest alter => await DecideAsync((c, image) => c.AlterPartition(image, alter), cancellationToken).ConfigureAwait(false),
                AllocateProducerIdsRequest allocate => await DecideAsync((c, image) => c.AllocateProducerIds(image, allocate), cancellationToken).ConfigureAwait(false),
                _ => throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"The controller does not handle {request.ApiKey}."),
            };
        }
        catch (NotControllerException)
        {
            return request switch
            {
                BrokerRegistrationRequest => new BrokerRegistrationResponse { ErrorCode = (short)ErrorCode.NotController },
                AllocateProducerIdsRequest => new AllocateProducerIdsResponse { ErrorCode = (short)ErrorCode.NotController, ProducerIdStart = -1 },
                AlterPartitionRequest => new AlterPartitionResponse { ErrorCode = (short)ErrorCode.NotController },
                _ => new BrokerHeartbeatResponse { ErrorCode = (short)ErrorCode.NotController },
            };
        }
    }

    /// <summary>
    /// The quorum as DescribeQuorum tells it: the leadership from the quorum, and each other voter's progress from its
    /// broker's last heartbeat (the metadata offset it had applied, and when).
    /// </summary>
    public QuorumStatus DescribeQuorum()
    {
        var status = _quorum.Status();
        return status with
        {
            Voters = [.. status.Voters.Select(v => v.LogEndOffset >= 0 || !_progress.TryGetValue(v.Id, out var p)
                ? v
                : new VoterStatus(v.Id, p.End, p.AtMs, p.End >= status.HighWatermark ? p.AtMs : -1))],
        };
    }

    private BrokerHeartbeatResponse Track(BrokerHeartbeatRequest request, IApiMessage response)
    {
        var answer = (BrokerHeartbeatResponse)response;
        if (answer.ErrorCode == 0)
        {
            _progress[request.BrokerId] = (request.CurrentMetadataOffset + 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        }

        return answer;
    }

    private async Task<IApiMessage> DecideAsync<T>(Func<QuorumController, ClusterImage, ControllerResult<T>> decision, CancellationToken cancellationToken)
        where T : IApiMessage
    {
        var (_, response) = await _quorum.UpdateAsync(
            image =>
            {
                var result = decision(Active(image), image);
                return (result.Records, result.Response);
            },
            cancellationToken).ConfigureAwait(false);
        return response;
    }

    /// <summary>
    /// The controller of this leadership, inside the writer's turn (which only the active controller gets). A new
    /// leadership starts a new controller: sessions renewed, except that of this process's own broker at the first
    /// activation after a start, whose registration in the image belongs to the process that stopped.
    /// </summary>
    private QuorumController Active(ClusterImage image)
    {
        if (_controller is null)
        {
            // A cluster's id is the one its quorum recorded (a single node's comes from meta.properties). Until the
            // quorum's first leader has recorded it, there is nothing to check registrations against: not ready.
            var clusterId = image.ClusterId ?? _identity.ClusterId;
            if (clusterId.Length == 0)
            {
                throw new NotControllerException(_quorum.ActiveControllerId, "The metadata quorum has not recorded its cluster id yet.");
            }

            // The registration of this node's broker by an earlier process (another incarnation) gets no session: that
            // process is gone. One made by this process is as alive as any other broker's.
            _controller = new QuorumController(clusterId, _options.BrokerSessionTimeoutMs, TimeProvider.System, UncleanAllowed);
            var previousRun = image.Brokers.TryGetValue(_options.NodeId, out var own) && own.IncarnationId != _identity.IncarnationId;
            _controller.Activate(image, previousRun && _options.Roles.HasFlag(Config.NodeRoles.Broker) ? _options.NodeId : null);
            LogActivated(_logger, _options.NodeId, image.LastOffset);
        }

        return _controller;
    }

    private async Task FenceExpiredAsync()
    {
        // One check at a time: a slow write must not pile checks up behind it.
        if (Interlocked.Exchange(ref _checking, 1) == 1)
        {
            return;
        }

        try
        {
            if (!_quorum.IsActiveController)
            {
                // Another node leads (or none does): this one's sessions are stale when it leads again.
                _controller = null;
                return;
            }

            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var balance = _options.Config.GetBool("auto.leader.rebalance.enable") && now >= _nextBalanceMs;
            if (balance)
            {
                _nextBalanceMs = now + (_options.Config.GetLong("leader.imbalance.check.interval.seconds") * 1000);
            }

            var (image, fenced) = await _quorum.UpdateAsync(image =>
            {
                var records = Active(image).Tick(image, maintain: true, balance);
                return (records, records.OfType<BrokerRegistrationChangeRecord>().Select(r => r.BrokerId).ToList());
            }).ConfigureAwait(false);
            foreach (var id in fenced)
            {
                LogFenced(_logger, id, image.LastOffset);
            }
        }
        catch (NotControllerException)
        {
            _controller = null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogFenceCheckFailed(_logger, e);
        }
        finally
        {
            Volatile.Write(ref _checking, 0);
        }
    }

    /// <summary>unclean.leader.election.enable as in force for <paramref name="topic"/> (its override, else the broker's).</summary>
    private bool UncleanAllowed(ClusterImage image, TopicImage topic) =>
        Topics.TopicConfigs.Find("unclean.leader.election.enable") is { } definition
        && string.Equals(_configs.TopicValue(image, topic, definition, "unclean.leader.election.enable").Value, "true", StringComparison.OrdinalIgnoreCase);

    public async ValueTask DisposeAsync()
    {
        await _fenceCheck.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} is the active controller (metadata offset {Offset})")]
    private static partial void LogActivated(ILogger logger, int nodeId, long offset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fenced broker {BrokerId}: no heartbeat within broker.session.timeout.ms (metadata offset {Offset})")]
    private static partial void LogFenced(ILogger logger, int brokerId, long offset);

    [LoggerMessage(Level = LogLevel.Error, Message = "The check for brokers whose session ran out failed; it runs again shortly")]
    private static partial void LogFenceCheckFailed(ILogger logger, Exception exception);
}
