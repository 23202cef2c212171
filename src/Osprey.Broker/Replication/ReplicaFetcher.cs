using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Osprey.Client;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Replication;

/// <summary>
/// Copies the partitions one leader broker leads for this broker: a loop of Fetch requests (with ReplicaState, by
/// topic id) over one connection. Each response's records are appended with the leader's offsets and epochs, a
/// DivergingEpoch truncates the log by epochs, and the leader's high watermark and log start offset are taken. With
/// durable appends on, what was appended is on disk before the next fetch, so the offset the leader counts toward
/// the high watermark is always durable on the follower.
/// </summary>
internal sealed partial class ReplicaFetcher : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Topic, int Partition), FetchedPartition> _partitions = new();
    private readonly Func<(string Host, int Port)?> _endpoint;
    private readonly Func<long> _brokerEpoch;
    private readonly LogManager _logs;
    private readonly BrokerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _work = new(0);
    private readonly Task _loop;
    private BrokerConnection? _connection;

    public ReplicaFetcher(int leaderId, Func<(string Host, int Port)?> endpoint, Func<long> brokerEpoch, LogManager logs, BrokerOptions options, ILogger logger)
    {
        LeaderId = leaderId;
        _endpoint = endpoint;
        _brokerEpoch = brokerEpoch;
        _logs = logs;
        _options = options;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public int LeaderId { get; }

    public bool IsEmpty => _partitions.IsEmpty;

    public void Add(Partition partition)
    {
        _partitions[(partition.Topic, partition.Index)] = new FetchedPartition(partition);
        _work.Release();
    }

    public void Remove(Partition partition) => _partitions.TryRemove((partition.Topic, partition.Index), out _);

    public IEnumerable<Partition> Partitions => _partitions.Values.Select(p => p.Partition);

    public bool Contains(Partition partition) => _partitions.TryGetValue((partition.Topic, partition.Index), out var p) && p.Partition == partition;

    private async Task RunAsync()
    {
        var stop = _stop.Token;
        var backoff = TimeSpan.FromMilliseconds(_options.Config.GetInt("replica.fetch.backoff.ms"));
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (_partitions.IsEmpty)
                {
                    await _work.WaitAsync(stop).ConfigureAwait(false);
                    continue;
                }

                var now = _options.Time.GetUtcNow();
                var ready = _partitions.Values.Where(p => p.DelayedUntil <= now).ToList();
                if (ready.Count == 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), _options.Time, stop).ConfigureAwait(false);
                    continue;
                }

                var connection = await ConnectAsync(stop).ConfigureAwait(false);
                if (connection is null)
                {
                    await Task.Delay(backoff, _options.Time, stop).ConfigureAwait(false);
                    continue;
                }

                await FetchOnceAsync(connection, ready, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is KafkaException or IOException or KafkaProtocolException or KafkaStorageException)
            {
                LogFetchFailed(_logger, LeaderId, e.Message);
                await DropConnectionAsync().ConfigureAwait(false);
                try
                {
                    await Task.Delay(backoff, _options.Time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    private async Task FetchOnceAsync(BrokerConnection connection, List<FetchedPartition> partitions, CancellationToken stop)
    {
        var version = connection.VersionFor(ApiKey.Fetch, 17, 15);
        var sent = partitions.Select(p => (Fetched: p, Epoch: p.Partition.LeaderEpoch)).ToList();
        var request = new FetchRequest
        {
            ReplicaState = new FetchRequest.ReplicaStateData { ReplicaId = _options.NodeId, ReplicaEpoch = _brokerEpoch() },
            MaxWaitMs = _options.Config.GetInt("replica.fetch.wait.max.ms"),
            MinBytes = _options.Config.GetInt("replica.fetch.min.bytes"),
            MaxBytes = _options.Config.GetInt("replica.fetch.response.max.bytes"),
            IsolationLevel = 0,
            SessionId = 0,
            SessionEpoch = -1,
            Topics = [.. sent.GroupBy(s => s.Fetched.Partition.TopicId).Select(g => new FetchRequest.FetchTopic
            {
                TopicId = g.Key,
                Partitions = [.. g.Select(s => new FetchRequest.FetchPartition
                {
                    Partition = s.Fetched.Partition.Index,
                    CurrentLeaderEpoch = s.Epoch,
                    FetchOffset = s.Fetched.Partition.Log.LogEndOffset,
                    LastFetchedEpoch = s.Fetched.Partition.LastFetchedEpoch,
                    LogStartOffset = s.Fetched.Partition.Log.LogStartOffset,
                    PartitionMaxBytes = _options.Config.GetInt("replica.fetch.max.bytes"),
                })],
            })],
        };
        var response = await connection.SendAsync<FetchResponse>(request, version, stop).ConfigureAwait(false);
        if (response.ErrorCode != 0)
        {
            throw new KafkaException((ErrorCode)response.ErrorCode, $"The leader {LeaderId} refused the fetch: {((ErrorCode)response.ErrorCode).KafkaName()}");
        }

        var durable = new List<Task>();
        foreach (var topic in response.Responses)
        {
            foreach (var data in topic.Partitions)
            {
                var entry = sent.FirstOrDefault(s => s.Fetched.Partition.TopicId == topic.TopicId && s.Fetched.Partition.Index == data.PartitionIndex);
                if (entry.Fetched is not { } fetched || !Contains(fetched.Partition))
                {
                    continue;
                }

                Handle(fetched, entry.Epoch, data, durable);
            }
        }

        // The next fetch reports these offsets to the leader as held: they must be on disk first.
        await Task.WhenAll(durable).ConfigureAwait(false);
    }

    private void Handle(FetchedPartition fetched, int epoch, FetchResponse.PartitionData data, List<Task> durable)
    {
        var partition = fetched.Partition;
        var error = (ErrorCode)data.ErrorCode;
        if (error == ErrorCode.OffsetOutOfRange && data.LogStartOffset > partition.Log.LogEndOffset)
        {
            // The leader deleted (retention, DeleteRecords) what this follower still lacks: start over at its start.
            var before = partition.Log.LogEndOffset;
            if (partition.StartOverAsFollower(epoch, data.LogStartOffset))
            {
                LogStartedOver(_logger, partition.Topic, partition.Index, before, data.LogStartOffset);
                return;
            }
        }

        if (error != ErrorCode.None)
        {
            // The leader moved or does not know this epoch yet: wait for the metadata to catch up.
            fetched.DelayedUntil = _options.Time.GetUtcNow() + TimeSpan.FromMilliseconds(_options.Config.GetInt("replica.fetch.backoff.ms"));
            LogPartitionError(_logger, partition.Topic, partition.Index, LeaderId, error.KafkaName());
            return;
        }

        if (data.DivergingEpoch is { } diverging && (diverging.Epoch >= 0 || diverging.EndOffset >= 0))
        {
            var before = partition.Log.LogEndOffset;
            if (partition.TruncateAsFollower(epoch, diverging.Epoch, diverging.EndOffset) is { } truncatedTo)
            {
                LogTruncated(_logger, partition.Topic, partition.Index, before, truncatedTo, diverging.Epoch, diverging.EndOffset);
            }

            return;
        }

        var records = data.Records ?? ReadOnlyMemory<byte>.Empty;
        if (partition.AppendAsFollower(epoch, records.Span, data.HighWatermark, data.LogStartOffset) is { } appended)
        {
            durable.Add(_logs.WhenDurable(partition.Log, appended, durable: true));
        }
    }

    private async Task<BrokerConnection?> ConnectAsync(CancellationToken stop)
    {
        if (_connection is { IsBroken: false } open)
        {
            return open;
        }

        await DropConnectionAsync().ConfigureAwait(false);
        if (_endpoint() is not { } endpoint)
        {
            return null;
        }

        _connection = await BrokerConnection.ConnectAsync(endpoint.Host, endpoint.Port, $"osprey-replica-fetcher-{_options.NodeId}", stop).ConfigureAwait(false);
        return _connection;
    }

    private async Task DropConnectionAsync()
    {
        if (Interlocked.Exchange(ref _connection, null) is { } connection)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
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

        await DropConnectionAsync().ConfigureAwait(false);
        _stop.Dispose();
        _work.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fetching from leader {LeaderId} failed: {Reason}; trying again after replica.fetch.backoff.ms")]
    private static partial void LogFetchFailed(ILogger logger, int leaderId, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Replica {Topic}-{Partition}: leader {LeaderId} answered {Error}; waiting for the metadata")]
    private static partial void LogPartitionError(ILogger logger, string topic, int partition, int leaderId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Replica {Topic}-{Partition} parted from its leader's log: truncated from {Before} to {After} (leader's epoch {Epoch} ends at {EndOffset})")]
    private static partial void LogTruncated(ILogger logger, string topic, int partition, long before, long after, int epoch, long endOffset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Replica {Topic}-{Partition} ended at {End}, before its leader's log start {Start}: it starts over, empty, at the leader's start")]
    private static partial void LogStartedOver(ILogger logger, string topic, int partition, long end, long start);

    private sealed class FetchedPartition(Partition partition)
    {
        public Partition Partition { get; } = partition;

        public DateTimeOffset DelayedUntil { get; set; }
    }
}
