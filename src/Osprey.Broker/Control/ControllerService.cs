using Microsoft.Extensions.Logging;
using Osprey.Controller;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Control;

/// <summary>
/// Hosts the <see cref="QuorumController"/> on the node whose quorum it runs: every decision goes through the metadata
/// quorum's serialized writes (so the controller's own state is touched by one decision at a time), and a timer
/// fences brokers whose session ran out. Controller requests reach it from the CONTROLLER listener's handlers or,
/// on a node without one, straight from its own broker (<see cref="LocalControllerChannel"/>).
/// </summary>
public sealed partial class ControllerService : IAsyncDisposable
{
    private readonly IMetadataQuorum _quorum;
    private readonly QuorumController _controller;
    private readonly ILogger _logger;
    private readonly ITimer _fenceCheck;
    private readonly TimeSpan _fenceCheckInterval;
    private int _checking;

    public ControllerService(IMetadataQuorum quorum, BrokerOptions options, BrokerIdentity identity, ILogger<ControllerService> logger)
    {
        _quorum = quorum;
        _logger = logger;
        _controller = new QuorumController(identity.ClusterId, options.BrokerSessionTimeoutMs, TimeProvider.System);
        _controller.Activate(quorum.Image, options.Roles.HasFlag(Config.NodeRoles.Broker) ? options.NodeId : null);

        // Often enough that a silent broker is fenced within a fraction of a heartbeat interval after its session ends.
        _fenceCheckInterval = TimeSpan.FromMilliseconds(Math.Clamp(options.BrokerHeartbeatIntervalMs / 2, 10, 1000));
        _fenceCheck = TimeProvider.System.CreateTimer(_ => _ = FenceExpiredAsync(), null, _fenceCheckInterval, _fenceCheckInterval);
    }

    /// <summary>Answers one controller request (the APIs the CONTROLLER listener serves to brokers).</summary>
    public async Task<IApiMessage> HandleAsync(IApiMessage request, CancellationToken cancellationToken) => request switch
    {
        BrokerRegistrationRequest registration => await DecideAsync(image => _controller.Register(image, registration), cancellationToken).ConfigureAwait(false),
        BrokerHeartbeatRequest heartbeat => await DecideAsync(image => _controller.Heartbeat(image, heartbeat), cancellationToken).ConfigureAwait(false),
        _ => throw new KafkaProtocolException(ErrorCode.InvalidRequest, $"The controller does not handle {request.ApiKey}."),
    };

    private async Task<T> DecideAsync<T>(Func<ClusterImage, ControllerResult<T>> decide, CancellationToken cancellationToken)
    {
        var (_, response) = await _quorum.UpdateAsync(
            image =>
            {
                var result = decide(image);
                return (result.Records, result.Response);
            },
            cancellationToken).ConfigureAwait(false);
        return response;
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
            var (image, fenced) = await _quorum.UpdateAsync(image =>
            {
                var records = _controller.FenceExpired(image);
                return (records, records.OfType<BrokerRegistrationChangeRecord>().Select(r => r.BrokerId).ToList());
            }).ConfigureAwait(false);
            foreach (var id in fenced)
            {
                LogFenced(_logger, id, image.LastOffset);
            }
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

    public async ValueTask DisposeAsync()
    {
        await _fenceCheck.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fenced broker {BrokerId}: no heartbeat within broker.session.timeout.ms (metadata offset {Offset})")]
    private static partial void LogFenced(ILogger logger, int brokerId, long offset);

    [LoggerMessage(Level = LogLevel.Error, Message = "The check for brokers whose session ran out failed; it runs again shortly")]
    private static partial void LogFenceCheckFailed(ILogger logger, Exception exception);
}
