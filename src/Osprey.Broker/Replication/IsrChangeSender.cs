using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Osprey.Broker.Control;
using Osprey.Broker.Lifecycle;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Replication;

/// <summary>
/// Asks the active controller to change the ISR of the partitions this broker leads: followers that have not caught
/// up within replica.lag.time.max.ms leave it, followers that caught up (on unfenced brokers, at the broker epoch they
/// fetch with) join it. The leaders are checked every half lag time, at most every half second; all changes found in
/// one check go in one AlterPartition (v3, members with their broker epochs), and a partition has at most one change
/// in flight. A refused change is proposed again at a later check, once the metadata has caught up.
/// </summary>
public sealed partial class IsrChangeSender : IAsyncDisposable
{
    private readonly ReplicaManager _replicas;
    private readonly IControllerChannel _controller;
    private readonly BrokerLifecycleManager _lifecycle;
    private readonly IMetadataQuorum _metadata;
    private readonly BrokerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public IsrChangeSender(ReplicaManager replicas, IControllerChannel controller, BrokerLifecycleManager lifecycle, IMetadataQuorum metadata, BrokerOptions options, ILogger<IsrChangeSender> logger)
    {
        _replicas = replicas;
        _controller = controller;
        _lifecycle = lifecycle;
        _metadata = metadata;
        _options = options;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    private long LagTimeMaxMs => _options.Config.GetLong("replica.lag.time.max.ms");

    private async Task RunAsync()
    {
        var interval = TimeSpan.FromMilliseconds(Math.Clamp(LagTimeMaxMs / 2, 10, 500));
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, _options.Time, _stop.Token).ConfigureAwait(false);
                await CheckAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogCheckFailed(_logger, e);
            }
        }
    }

    /// <summary>One check of every partition this broker leads, and the AlterPartition for the changes found.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        var image = _metadata.Image;
        var now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        bool Eligible(int id, long brokerEpoch) =>
            image.Brokers.TryGetValue(id, out var broker) && !broker.Fenced && !broker.InControlledShutdown && broker.Epoch == brokerEpoch;
        var proposals = new List<(Partition Partition, (ImmutableArray<int> Isr, int LeaderEpoch, int PartitionEpoch) Change)>();
        foreach (var partition in _replicas.Partitions)
        {
            if (partition.IsLeader && partition.ProposeIsrChange(now, LagTimeMaxMs, Eligible) is { } change)
            {
                proposals.Add((partition, change));
            }
        }

        if (proposals.Count == 0)
        {
            return;
        }

        var request = new AlterPartitionRequest
        {
            BrokerId = _options.NodeId,
            BrokerEpoch = _lifecycle.BrokerEpoch,
            Topics = [.. proposals.GroupBy(p => p.Partition.TopicId).Select(g => new AlterPartitionRequest.TopicData
            {
                TopicId = g.Key,
                Partitions = [.. g.Select(p => new AlterPartitionRequest.PartitionData
                {
                    PartitionIndex = p.Partition.Index,
                    LeaderEpoch = p.Change.LeaderEpoch,
                    PartitionEpoch = p.Change.PartitionEpoch,
                    NewIsrWithEpochs = [.. p.Change.Isr.Select(b => new AlterPartitionRequest.BrokerState { BrokerId = b, BrokerEpoch = image.Brokers.TryGetValue(b, out var r) ? r.Epoch : -1 })],
                })],
            })],
        };

        AlterPartitionResponse? response = null;
        try
        {
            response = await _controller.SendAsync<AlterPartitionResponse>(request, cancellationToken).ConfigureAwait(false);
            if ((ErrorCode)response.ErrorCode == ErrorCode.NotController)
            {
                _controller.ControllerMoved();
            }
        }
        catch (Exception e) when (e is Client.KafkaException or IOException)
        {
            LogSendFailed(_logger, e.Message);
        }

        now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var (partition, change) in proposals)
        {
            var answer = response is { ErrorCode: 0 }
                ? response.Topics.FirstOrDefault(t => t.TopicId == partition.TopicId)?.Partitions.FirstOrDefault(p => p.PartitionIndex == partition.Index)
                : null;
            if (answer is { ErrorCode: 0 })
            {
                partition.IsrChangeAnswered(change.LeaderEpoch, answer.Isr, answer.PartitionEpoch, now);
                LogIsrChanged(_logger, partition.Topic, partition.Index, string.Join(",", answer.Isr), answer.PartitionEpoch);
            }
            else
            {
                partition.IsrChangeAnswered(change.LeaderEpoch, null, -1, now);
                LogRefused(_logger, partition.Topic, partition.Index, string.Join(",", change.Isr), ((ErrorCode)(answer?.ErrorCode ?? response?.ErrorCode ?? (short)ErrorCode.NetworkException)).KafkaName());
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "ISR of {Topic}-{Partition} is now [{Isr}] (partition epoch {PartitionEpoch})")]
    private static partial void LogIsrChanged(ILogger logger, string topic, int partition, string isr, int partitionEpoch);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The controller did not change the ISR of {Topic}-{Partition} to [{Isr}]: {Error}; proposed again later")]
    private static partial void LogRefused(ILogger logger, string topic, int partition, string isr, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not send ISR changes to the controller: {Reason}")]
    private static partial void LogSendFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The ISR check failed; it runs again shortly")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception);
}
