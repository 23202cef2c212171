using Microsoft.Extensions.Logging;
using Osprey.Broker.Lifecycle;
using Osprey.Metadata;
using Osprey.Storage;

namespace Osprey.Broker.Replication;

/// <summary>
/// Keeps one <see cref="ReplicaFetcher"/> per leader broker this broker follows partitions of (Kafka's
/// num.replica.fetchers = 1), in step with the replicas' roles: after each metadata change a partition this broker
/// follows is fetched from its current leader, and a partition it leads (or no longer holds) from nobody. Leaders
/// are reached at their inter-broker listener.
/// </summary>
public sealed class ReplicaFetcherManager : IMetadataPublisher, IAsyncDisposable
{
    private readonly ReplicaManager _replicas;
    private readonly IMetadataQuorum _metadata;
    private readonly LogManager _logs;
    private readonly BrokerOptions _options;
    private readonly BrokerLifecycleManager _lifecycle;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, ReplicaFetcher> _fetchers = [];
    private bool _disposed;

    public ReplicaFetcherManager(ReplicaManager replicas, IMetadataQuorum metadata, LogManager logs, BrokerOptions options, BrokerLifecycleManager lifecycle, ILogger<ReplicaFetcherManager> logger)
    {
        _replicas = replicas;
        _metadata = metadata;
        _logs = logs;
        _options = options;
        _lifecycle = lifecycle;
        _logger = logger;
        metadata.AddPublisher(this);
        Sync();
    }

    /// <summary>The leader each followed partition is fetched from, for tests and diagnostics.</summary>
    public IReadOnlyDictionary<(string Topic, int Partition), int> Following
    {
        get
        {
            lock (_lock)
            {
                return _fetchers.Values.SelectMany(f => f.Partitions.Select(p => (Key: (p.Topic, p.Index), f.LeaderId))).ToDictionary(x => x.Key, x => x.LeaderId);
            }
        }
    }

    public ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
    {
        Sync();
        return ValueTask.CompletedTask;
    }

    /// <summary>Moves every partition to the fetcher of its leader (or out of all of them when this broker leads it).</summary>
    private void Sync()
    {
        lock (_lock)
        {
            if (_disposed || !_options.ReplicaFetchers)
            {
                return;
            }

            var desired = _replicas.Partitions.Where(p => !p.IsLeader && p.LeaderId >= 0 && p.LeaderId != _options.NodeId).ToDictionary(p => p, p => p.LeaderId);
            foreach (var fetcher in _fetchers.Values)
            {
                foreach (var partition in fetcher.Partitions.ToList())
                {
                    if (!desired.TryGetValue(partition, out var leader) || leader != fetcher.LeaderId)
                    {
                        fetcher.Remove(partition);
                    }
                }
            }

            foreach (var (partition, leader) in desired)
            {
                if (!_fetchers.TryGetValue(leader, out var fetcher))
                {
                    fetcher = new ReplicaFetcher(leader, () => Endpoint(leader), () => _lifecycle.BrokerEpoch, _logs, _options, _logger);
                    _fetchers[leader] = fetcher;
                }

                if (!fetcher.Contains(partition))
                {
                    fetcher.Add(partition);
                }
            }
        }
    }

    /// <summary>The leader's inter-broker endpoint, from the metadata (null while it has none registered).</summary>
    private (string Host, int Port)? Endpoint(int leader)
    {
        var listener = _options.InterBrokerListenerName;
        return _metadata.Image.Brokers.TryGetValue(leader, out var broker)
            && broker.Endpoints.FirstOrDefault(e => e.Name.Equals(listener, StringComparison.OrdinalIgnoreCase)) is { } endpoint
            ? (endpoint.Host, endpoint.Port)
            : null;
    }

    public async ValueTask DisposeAsync()
    {
        List<ReplicaFetcher> fetchers;
        lock (_lock)
        {
            _disposed = true;
            fetchers = [.. _fetchers.Values];
            _fetchers.Clear();
        }

        foreach (var fetcher in fetchers)
        {
            await fetcher.DisposeAsync().ConfigureAwait(false);
        }
    }
}
