using Microsoft.Extensions.Logging;
using Osprey.Broker.Control;
using Osprey.Broker.Handlers;
using Osprey.Broker.Network;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Lifecycle;

/// <summary>
/// The broker's standing with the controller (Kafka's BrokerLifecycleManager): it registers (a new incarnation each
/// process start), then heartbeats every <c>broker.heartbeat.interval.ms</c> with the metadata offset it has applied.
/// The controller unfences it once that offset reaches its registration; only then does the broker serve clients
/// (<see cref="ServingGate"/>). A heartbeat the controller no longer knows (STALE_BROKER_EPOCH,
/// BROKER_ID_NOT_REGISTERED) makes it register again.
/// </summary>
public sealed partial class BrokerLifecycleManager : IAsyncDisposable
{
    /// <summary>How soon the next heartbeat goes while the broker is still fenced (Kafka sends them back to back).</summary>
    private static readonly TimeSpan FencedInterval = TimeSpan.FromMilliseconds(20);

    private readonly IControllerChannel _channel;
    private readonly IMetadataQuorum _metadata;
    private readonly BrokerOptions _options;
    private readonly BrokerIdentity _identity;
    private readonly ServingGate _gate;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _unfenced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _mayShutDown = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _wake = new(0);
    private volatile bool _wantShutDown;
    private Task _loop = Task.CompletedTask;
    private bool _fenced = true;
    private int _disposed;

    public BrokerLifecycleManager(IControllerChannel channel, IMetadataQuorum metadata, BrokerOptions options, BrokerIdentity identity, ServingGate gate, ILogger<BrokerLifecycleManager> logger)
    {
        _channel = channel;
        _metadata = metadata;
        _options = options;
        _identity = identity;
        _gate = gate;
        _logger = logger;
    }

    public Guid IncarnationId => _identity.IncarnationId;

    /// <summary>The epoch of the current registration (-1 while unregistered).</summary>
    public long BrokerEpoch { get; private set; } = -1;

    /// <summary>Starts registering and heartbeating; completes once the controller has unfenced this broker.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);
        await _unfenced.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stop.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                wait = BrokerEpoch < 0 ? await RegisterAsync(stop).ConfigureAwait(false) : await HeartbeatAsync(stop).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogControllerUnreachable(_logger, e.Message);
                wait = backoff;
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, _options.BrokerHeartbeatIntervalMs));
            }

            try
            {
                await _wake.WaitAsync(wait, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<TimeSpan> RegisterAsync(CancellationToken stop)
    {
        var request = new BrokerRegistrationRequest
        {
            BrokerId = _options.NodeId,
            ClusterId = _identity.ClusterId,
            IncarnationId = IncarnationId,
            Rack = _options.Rack,
            Listeners = [new BrokerRegistrationRequest.Listener { Name = _options.ListenerName, Host = _identity.Host, Port = (ushort)_identity.Port, SecurityProtocol = 0 }],
            Features = [.. ApiVersionsHandler.Features.Select(f => new BrokerRegistrationRequest.Feature { Name = f.Name, MinSupportedVersion = f.Min, MaxSupportedVersion = f.Max })],
        };
        var response = await _channel.SendAsync<BrokerRegistrationResponse>(request, stop).ConfigureAwait(false);
        var error = (ErrorCode)response.ErrorCode;
        if (error != ErrorCode.None)
        {
            if (error == ErrorCode.NotController)
            {
                _channel.ControllerMoved();
            }

            LogRegistrationRefused(_logger, error.KafkaName());
            return TimeSpan.FromMilliseconds(_options.BrokerHeartbeatIntervalMs);
        }

        BrokerEpoch = response.BrokerEpoch;
        _fenced = true;
        LogRegistered(_logger, _options.NodeId, BrokerEpoch, IncarnationId);
        return TimeSpan.Zero;
    }

    private async Task<TimeSpan> HeartbeatAsync(CancellationToken stop)
    {
        var request = new BrokerHeartbeatRequest
        {
            BrokerId = _options.NodeId,
            BrokerEpoch = BrokerEpoch,
            CurrentMetadataOffset = _metadata.Image.LastOffset,
            WantShutDown = _wantShutDown,
        };
        var response = await _channel.SendAsync<BrokerHeartbeatResponse>(request, stop).ConfigureAwait(false);
        switch ((ErrorCode)response.ErrorCode)
        {
            case ErrorCode.None:
                break;
            case ErrorCode.StaleBrokerEpoch or ErrorCode.BrokerIdNotRegistered:
                LogRegistrationLost(_logger, BrokerEpoch, ((ErrorCode)response.ErrorCode).KafkaName());
                BrokerEpoch = -1;
                return TimeSpan.Zero;
            case ErrorCode.NotController:
                _channel.ControllerMoved();
                return TimeSpan.Zero;
            default:
                throw new KafkaProtocolException((ErrorCode)response.ErrorCode, $"The controller refused a heartbeat: {((ErrorCode)response.ErrorCode).KafkaName()}.");
        }

        if (response.IsFenced != _fenced)
        {
            _fenced = response.IsFenced;
            if (_fenced)
            {
                LogFenced(_logger, BrokerEpoch);
            }
            else
            {
                LogUnfenced(_logger, BrokerEpoch);
                _gate.Open();
                _unfenced.TrySetResult();
            }
        }

        if (_wantShutDown)
        {
            if (response.ShouldShutDown)
            {
                _mayShutDown.TrySetResult();
            }

            return FencedInterval;
        }

        return _fenced ? FencedInterval : TimeSpan.FromMilliseconds(_options.BrokerHeartbeatIntervalMs);
    }

    /// <summary>
    /// Controlled shutdown: the heartbeats ask to shut down, the controller moves this broker's leaderships to other
    /// in-sync replicas and takes it out of the ISRs, and says when it may go. True once it has; false after
    /// <paramref name="timeout"/> (the controller out of reach, say), when the broker stops anyway and its partitions
    /// move when its session runs out.
    /// </summary>
    public async Task<bool> ControlledShutdownAsync(TimeSpan timeout)
    {
        if (BrokerEpoch < 0 || Volatile.Read(ref _disposed) == 1)
        {
            return false;
        }

        _wantShutDown = true;
        _wake.Release();
        try
        {
            await _mayShutDown.Task.WaitAsync(timeout).ConfigureAwait(false);
            LogShutDownAllowed(_logger, BrokerEpoch);
            return true;
        }
        catch (TimeoutException)
        {
            LogShutDownTimedOut(_logger, (long)timeout.TotalMilliseconds);
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
        _wake.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered with the controller as broker {BrokerId}, epoch {Epoch} (incarnation {Incarnation})")]
    private static partial void LogRegistered(ILogger logger, int brokerId, long epoch, Guid incarnation);

    [LoggerMessage(Level = LogLevel.Information, Message = "The controller unfenced this broker (epoch {Epoch}): it serves clients")]
    private static partial void LogUnfenced(ILogger logger, long epoch);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller fenced this broker (epoch {Epoch}); it leads nothing until it is unfenced")]
    private static partial void LogFenced(ILogger logger, long epoch);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller refused the registration: {Error}; trying again")]
    private static partial void LogRegistrationRefused(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller no longer knows registration {Epoch} ({Error}); registering again")]
    private static partial void LogRegistrationLost(ILogger logger, long epoch, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Controlled shutdown: the controller moved this broker's leaderships elsewhere (epoch {Epoch})")]
    private static partial void LogShutDownAllowed(ILogger logger, long epoch);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Controlled shutdown: the controller did not answer within {Ms} ms; stopping anyway (its partitions move once its session runs out)")]
    private static partial void LogShutDownTimedOut(ILogger logger, long ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reach the controller: {Reason}; trying again")]
    private static partial void LogControllerUnreachable(ILogger logger, string reason);
}
