using System.Globalization;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Client;

/// <summary>A broker as metadata describes it.</summary>
/// <summary>A broker as the cluster describes it; <see cref="Fenced"/> only from DescribeCluster v2+ (KIP-1073).</summary>
public sealed record BrokerInfo(int NodeId, string Host, int Port, string? Rack, bool Fenced = false);

/// <summary>A partition as metadata describes it.</summary>
public sealed record PartitionInfo(int Partition, int Leader, int LeaderEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr, short ErrorCode);

/// <summary>A topic as metadata describes it.</summary>
public sealed record TopicInfo(string Name, Guid TopicId, bool IsInternal, IReadOnlyList<PartitionInfo> Partitions);

/// <summary>The cluster: its id, controller and brokers.</summary>
public sealed record ClusterInfo(string? ClusterId, int ControllerId, IReadOnlyList<BrokerInfo> Brokers);

/// <summary>One config entry of a resource.</summary>
public sealed record ConfigEntryInfo(string Name, string? Value, string Source, bool IsReadOnly, bool IsSensitive, bool IsDefault);

/// <summary>A config change for IncrementalAlterConfigs.</summary>
public sealed record ConfigChange(string Name, ConfigOperation Operation, string? Value = null);

public enum ConfigOperation : sbyte
{
    Set = 0,
    Delete = 1,
    Append = 2,
    Subtract = 3,
}

/// <summary>Kafka's config resource types.</summary>
public enum ConfigResourceType : sbyte
{
    Topic = 2,
    Broker = 4,
}

/// <summary>
/// A pure-managed Kafka client: bootstraps from a list of brokers, keeps a connection per broker, and offers the
/// metadata, admin, produce, fetch and offset calls the <c>osprey</c> CLI needs. It speaks to Osprey and to Apache
/// Kafka alike, choosing each API's version from what the broker advertises.
/// </summary>
public sealed partial class KafkaClient : IAsyncDisposable
{
    private readonly List<(string Host, int Port)> _bootstrap;
    private readonly string _clientId;
    private readonly Dictionary<int, BrokerConnection> _byNode = [];
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TopicInfo> _topics = new(StringComparer.Ordinal);
    private BrokerConnection? _any;
    private Dictionary<int, BrokerInfo> _brokers = [];

    public KafkaClient(string bootstrapServers, string clientId = "osprey-cli")
    {
        _bootstrap = [.. bootstrapServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseHostPort)];
        if (_bootstrap.Count == 0)
        {
            throw new ArgumentException("At least one bootstrap server (host:port) is needed.", nameof(bootstrapServers));
        }

        _clientId = clientId;
    }

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    private static (string, int) ParseHostPort(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is 0 or > 65535)
        {
            throw new ArgumentException($"'{text}' is not a host:port bootstrap server.");
        }

        return (text[..colon].Trim('[', ']'), port);
    }

    /// <summary>A connection to any broker (the first bootstrap server that answers).</summary>
    public async Task<BrokerConnection> AnyAsync(CancellationToken cancellationToken)
    {
        if (_any is { IsBroken: false } any)
        {
            return any;
        }

        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_any is { IsBroken: false } again)
            {
                return again;
            }

            KafkaException? last = null;
            foreach (var (host, port) in _bootstrap)
            {
                try
                {
                    _any = await BrokerConnection.ConnectAsync(host, port, _clientId, cancellationToken).ConfigureAwait(false);
                    return _any;
                }
                catch (KafkaException e)
                {
                    last = e;
                }
            }

            throw last!;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    /// <summary>A connection to broker <paramref name="nodeId"/>, found through metadata.</summary>
    public async Task<BrokerConnection> NodeAsync(int nodeId, CancellationToken cancellationToken)
    {
        if (_byNode.TryGetValue(nodeId, out var existing) && !existing.IsBroken)
        {
            return existing;
        }

        if (!_brokers.ContainsKey(nodeId))
        {
            await MetadataAsync([], cancellationToken).ConfigureAwait(false);
        }

        if (!_brokers.TryGetValue(nodeId, out var broker))
        {
            throw new KafkaException(ErrorCode.BrokerNotAvailable, $"Broker {nodeId} is not in the cluster metadata.");
        }

        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_byNode.TryGetValue(nodeId, out existing) && !existing.IsBroken)
            {
                return existing;
            }

            var connection = await BrokerConnection.ConnectAsync(broker.Host, broker.Port, _clientId, cancellationToken).ConfigureAwait(false);
            _byNode[nodeId] = connection;
            return connection;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    private async Task<TResponse> CallAsync<TResponse>(BrokerConnection connection, IApiMessage request, short version, CancellationToken cancellationToken)
        where TResponse : IApiMessage, new()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            return await connection.SendAsync<TResponse>(request, version, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KafkaException(ErrorCode.RequestTimedOut, $"{request.ApiKey} to {connection.Host}:{connection.Port} got no answer within {RequestTimeout.TotalSeconds:0} s.");
        }
    }

    /// <summary>
    /// Metadata for <paramref name="topics"/> (null: every topic; empty: brokers only). Unknown topics come back
    /// with their error code in <see cref="PartitionInfo.ErrorCode"/> of no partitions; see <see cref="TopicAsync"/>.
    /// </summary>
    public async Task<(ClusterInfo Cluster, IReadOnlyList<(string Name, short ErrorCode, TopicInfo? Topic)> Topics)> MetadataAsync(
        IReadOnlyCollection<string>? topics, CancellationToken cancellationToken, bool allowAutoCreate = false)
    {
        var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.Metadata, 12, 1);
        var request = new MetadataRequest
        {
            Topics = topics?.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t }).ToList(),
            AllowAutoTopicCreation = allowAutoCreate,
        };
        var response = await CallAsync<MetadataResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var brokers = response.Brokers.Select(b => new BrokerInfo(b.NodeId, b.Host, b.Port, b.Rack)).ToList();
        _brokers = brokers.ToDictionary(b => b.NodeId);
        var result = response.Topics.Select(t => (
            t.Name ?? "",
            t.ErrorCode,
            t.ErrorCode != 0 ? null : new TopicInfo(
                t.Name ?? "",
                t.TopicId,
                t.IsInternal,
                t.Partitions.OrderBy(p => p.PartitionIndex).Select(p => new PartitionInfo(p.PartitionIndex, p.LeaderId, p.LeaderEpoch, p.ReplicaNodes, p.IsrNodes, p.ErrorCode)).ToList()))).ToList();
        return (new ClusterInfo(response.ClusterId, response.ControllerId, brokers), result);
    }

    /// <summary>One topic's metadata; UNKNOWN_TOPIC_OR_PARTITION (naming it) when it does not exist.</summary>
    public async Task<TopicInfo> TopicAsync(string topic, CancellationToken cancellationToken, bool allowAutoCreate = false)
    {
        var (_, topics) = await MetadataAsync([topic], cancellationToken, allowAutoCreate).ConfigureAwait(false);
        var (_, error, info) = topics.FirstOrDefault(t => t.Name == topic);
        if (info is not null)
        {
            _topics[topic] = info;
        }
        else
        {
            _topics.TryRemove(topic, out _);
            KafkaException.ThrowIfError(error == 0 ? (short)ErrorCode.UnknownTopicOrPartition : error, $"Topic '{topic}'", error is 0 or (short)ErrorCode.UnknownTopicOrPartition ? "does not exist" : null);
        }

        return info!;
    }

    public async Task<ClusterInfo> DescribeClusterAsync(CancellationToken cancellationToken)
    {
        var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
        if (!connection.Supports(ApiKey.DescribeCluster))
        {
            return (await MetadataAsync([], cancellationToken).ConfigureAwait(false)).Cluster;
        }

        // v2 lists fenced brokers too (a stopped node of a cluster, until it is back).
        var version = connection.VersionFor(ApiKey.DescribeCluster, 2);
        var response = await CallAsync<DescribeClusterResponse>(connection, new DescribeClusterRequest { EndpointType = 1, IncludeFencedBrokers = version >= 2 }, version, cancellationToken).ConfigureAwait(false);
        KafkaException.ThrowIfError(response.ErrorCode, "DescribeCluster", response.ErrorMessage);
        return new ClusterInfo(response.ClusterId, response.ControllerId, response.Brokers.Select(b => new BrokerInfo(b.BrokerId, b.Host, b.Port, b.Rack, b.IsFenced)).ToList());
    }

    public async Task<Guid> CreateTopicAsync(string name, int partitions, short replicationFactor, IReadOnlyDictionary<string, string> configs, bool validateOnly, CancellationToken cancellationToken)
    {
        var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.CreateTopics, 7, 2);
        var request = new CreateTopicsRequest
        {
            TimeoutMs = (int)RequestTimeout.TotalMilliseconds,
            ValidateOnly = validateOnly,
            Topics =
            [
                new()
                {
                    Name = name,
                    NumPartitions = partitions,
                    ReplicationFactor = replicationFactor,
                    Configs = configs.Select(c => new CreateTopicsRequest.CreatableTopicConfig { Name = c.Key, Value = c.Value }).ToList(),
                },
            ],
        };
        var response = await CallAsync<CreateTopicsResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Topics.Single();
        KafkaException.ThrowIfError(result.ErrorCode, $"Creating topic '{name}'", result.ErrorMessage);
        return result.TopicId;
    }

    public async Task DeleteTopicAsync(string name, CancellationToken cancellationToken)
    {
        var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.DeleteTopics, 6, 1);
        var request = new DeleteTopicsRequest { TimeoutMs = (int)RequestTimeout.TotalMilliseconds };
        if (version >= 6)
        {
            request.Topics = [new() { Name = name }];
        }
        else
        {
            request.TopicNames = [name];
        }

        var response = await CallAsync<DeleteTopicsResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Responses.Single();
        KafkaException.ThrowIfError(result.ErrorCode, $"Deleting topic '{name}'", result.ErrorMessage ?? (result.ErrorCode == (short)ErrorCode.UnknownTopicOrPartition ? "does not exist" : null));
    }

    public async Task CreatePartitionsAsync(string name, int count, bool validateOnly, CancellationToken cancellationToken)
    {
        var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.CreatePartitions, 3);
        var request = new CreatePartitionsRequest
        {
            TimeoutMs = (int)RequestTimeout.TotalMilliseconds,
            ValidateOnly = validateOnly,
            Topics = [new() { Name = name, Count = count, Assignments = null }],
        };
        var response = await CallAsync<CreatePartitionsResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Results.Single();
        KafkaException.ThrowIfError(result.ErrorCode, $"Adding partitions to '{name}'", result.ErrorMessage);
    }

    public async Task<IReadOnlyList<ConfigEntryInfo>> DescribeConfigsAsync(ConfigResourceType type, string name, CancellationToken cancellationToken)
    {
        var connection = type == ConfigResourceType.Broker && int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var node)
            ? await NodeAsync(node, cancellationToken).ConfigureAwait(false)
            : await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.DescribeConfigs, 4, 1);
        var request = new DescribeConfigsRequest { Resources = [new() { ResourceType = (sbyte)type, ResourceName = name, ConfigurationKeys = null }] };
        var response = await CallAsync<DescribeConfigsResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Results.Single();
        KafkaException.ThrowIfError(result.ErrorCode, $"Describing the configs of {Describe(type, name)}", result.ErrorMessage);
        return result.Configs.Select(c => new ConfigEntryInfo(c.Name, c.Value, SourceName(c.ConfigSource), c.ReadOnly, c.IsSensitive, c.ConfigSource == 5)).ToList();
    }

    public async Task AlterConfigsAsync(ConfigResourceType type, string name, IReadOnlyList<ConfigChange> changes, bool validateOnly, CancellationToken cancellationToken)
    {
        var connection = type == ConfigResourceType.Broker && int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var node)
            ? await NodeAsync(node, cancellationToken).ConfigureAwait(false)
            : await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.IncrementalAlterConfigs, 1);
        var request = new IncrementalAlterConfigsRequest
        {
            ValidateOnly = validateOnly,
            Resources =
            [
                new()
                {
                    ResourceType = (sbyte)type,
                    ResourceName = name,
                    Configs = changes.Select(c => new IncrementalAlterConfigsRequest.AlterableConfig { Name = c.Name, ConfigOperation = (sbyte)c.Operation, Value = c.Value }).ToList(),
                },
            ],
        };
        var response = await CallAsync<IncrementalAlterConfigsResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Responses.Single();
        KafkaException.ThrowIfError(result.ErrorCode, $"Altering the configs of {Describe(type, name)}", result.ErrorMessage);
    }

    private static string Describe(ConfigResourceType type, string name) =>
        type == ConfigResourceType.Topic ? $"topic '{name}'" : name.Length == 0 ? "the cluster-wide broker defaults" : $"broker {name}";

    private static string SourceName(sbyte source) => source switch
    {
        1 => "topic",
        2 => "broker (dynamic)",
        3 => "cluster default (dynamic)",
        4 => "broker (static)",
        5 => "default",
        6 => "broker logger",
        _ => "unknown",
    };

    /// <summary>
    /// Deletes the records before <paramref name="beforeOffset"/> (-1: all of them, up to the high watermark) in one
    /// partition (DeleteRecords to its leader); returns the new low watermark.
    /// </summary>
    public async Task<long> DeleteRecordsAsync(string topic, int partition, long beforeOffset, CancellationToken cancellationToken)
    {
        var leader = await LeaderAsync(topic, partition, cancellationToken).ConfigureAwait(false);
        var response = await CallAsync<DeleteRecordsResponse>(
            leader,
            new DeleteRecordsRequest { TimeoutMs = (int)RequestTimeout.TotalMilliseconds, Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Offset = beforeOffset }] }] },
            leader.VersionFor(ApiKey.DeleteRecords, 2),
            cancellationToken).ConfigureAwait(false);
        var result = response.Topics.Single().Partitions.Single();
        ForgetIfStale(topic, result.ErrorCode);
        KafkaException.ThrowIfError(result.ErrorCode, $"Deleting records of {topic}-{partition} before offset {beforeOffset}");
        return result.LowWatermark;
    }

    /// <summary>
    /// The offset for <paramref name="timestamp"/> in a partition: -2 earliest, -1 latest, -3 the record with the
    /// largest timestamp, otherwise the first offset whose timestamp is at or after it (-1 when none is).
    /// </summary>
    public async Task<long> ListOffsetAsync(string topic, int partition, long timestamp, CancellationToken cancellationToken)
    {
        var connection = await LeaderAsync(topic, partition, cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.ListOffsets, 9, 1);
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Timestamp = timestamp, CurrentLeaderEpoch = -1 }] }],
        };
        var response = await CallAsync<ListOffsetsResponse>(connection, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Topics.Single().Partitions.Single();
        ForgetIfStale(topic, result.ErrorCode);
        KafkaException.ThrowIfError(result.ErrorCode, $"Listing offsets of {topic}-{partition}");
        return result.Offset;
    }

    /// <summary>A connection to the leader of a partition.</summary>
    /// <remarks>
    /// Uses the topic's metadata from the last <see cref="TopicAsync"/>, fetching it when there is none or it lacks the partition; a
    /// partition error that means the metadata is stale (<see cref="KafkaException.IsStaleMetadata"/>) drops it.
    /// </remarks>
    public async Task<BrokerConnection> LeaderAsync(string topic, int partition, CancellationToken cancellationToken)
    {
        var info = _topics.TryGetValue(topic, out var cached) && cached.Partitions.Any(p => p.Partition == partition)
            ? cached
            : await TopicAsync(topic, cancellationToken).ConfigureAwait(false);
        var found = info.Partitions.FirstOrDefault(p => p.Partition == partition)
            ?? throw new KafkaException(ErrorCode.UnknownTopicOrPartition, $"Topic '{topic}' has no partition {partition} (it has {info.Partitions.Count}).");
        if (found.Leader < 0)
        {
            throw new KafkaException(ErrorCode.LeaderNotAvailable, $"{topic}-{partition} has no leader right now.");
        }

        return await NodeAsync(found.Leader, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A new producer id and epoch for an idempotent producer.</summary>
    public async Task<(long ProducerId, short Epoch)> InitProducerIdAsync(CancellationToken cancellationToken)
    {
        var connection = await AnyAsync(cancellationToken).ConfigureAwait(false);
        var version = connection.VersionFor(ApiKey.InitProducerId, 4);
        var response = await CallAsync<InitProducerIdResponse>(connection, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60_000 }, version, cancellationToken).ConfigureAwait(false);
        KafkaException.ThrowIfError(response.ErrorCode, "InitProducerId");
        return (response.ProducerId, response.ProducerEpoch);
    }

    /// <summary>
    /// Sends one record batch to a partition's leader. Returns the offset of its first record (-1 with acks=0,
    /// which gets no answer).
    /// </summary>
    public async Task<long> ProduceAsync(BrokerConnection leader, string topic, int partition, ReadOnlyMemory<byte> batch, short acks, CancellationToken cancellationToken)
    {
        var version = leader.VersionFor(ApiKey.Produce, 12, 3);
        var request = new ProduceRequest
        {
            Acks = acks,
            TimeoutMs = (int)RequestTimeout.TotalMilliseconds,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        };
        if (acks == 0)
        {
            await leader.SendWithoutResponseAsync(request, version, cancellationToken).ConfigureAwait(false);
            return -1;
        }

        var response = await CallAsync<ProduceResponse>(leader, request, version, cancellationToken).ConfigureAwait(false);
        var result = response.Responses.Single().PartitionResponses.Single();
        ForgetIfStale(topic, result.ErrorCode);
        KafkaException.ThrowIfError(result.ErrorCode, $"Producing to {topic}-{partition}", result.ErrorMessage);
        return result.BaseOffset;
    }

    /// <summary>
    /// Fetches from several partitions of a topic led by the same broker, each from its offset, waiting up to
    /// <paramref name="maxWaitMs"/> for data. Returns per partition the records and the high watermark; a
    /// partition's error is thrown naming it.
    /// </summary>
    public async Task<Dictionary<int, FetchedPartition>> FetchAsync(
        BrokerConnection leader, string topic, IReadOnlyDictionary<int, long> offsets, int maxWaitMs, int maxBytes, int partitionMaxBytes, CancellationToken cancellationToken, bool readCommitted = false)
    {
        var version = leader.VersionFor(ApiKey.Fetch, 12, 4);
        var request = new FetchRequest
        {
            ReplicaId = -1,
            MaxWaitMs = maxWaitMs,
            MinBytes = 1,
            MaxBytes = maxBytes,
            IsolationLevel = readCommitted ? (sbyte)1 : (sbyte)0,
            SessionId = 0,
            SessionEpoch = -1,
            Topics =
            [
                new()
                {
                    Topic = topic,
                    Partitions = offsets.Select(o => new FetchRequest.FetchPartition { Partition = o.Key, FetchOffset = o.Value, PartitionMaxBytes = partitionMaxBytes, CurrentLeaderEpoch = -1, LogStartOffset = -1 }).ToList(),
                },
            ],
        };
        var response = await CallAsync<FetchResponse>(leader, request, version, cancellationToken).ConfigureAwait(false);
        KafkaException.ThrowIfError(response.ErrorCode, $"Fetching from '{topic}'");
        var result = new Dictionary<int, FetchedPartition>();
        foreach (var partition in response.Responses.SelectMany(r => r.Partitions))
        {
            var offset = offsets[partition.PartitionIndex];
            ForgetIfStale(topic, partition.ErrorCode);
            KafkaException.ThrowIfError(partition.ErrorCode, $"Fetching {topic}-{partition.PartitionIndex} at offset {offset}");
            var aborted = readCommitted ? (partition.AbortedTransactions ?? []).Select(a => (a.ProducerId, a.FirstOffset)).ToList() : null;
            var records = partition.Records is { } bytes ? ConsumedRecord.FromBatches(topic, partition.PartitionIndex, bytes.Span, offset, aborted) : [];
            var next = partition.Records is { } fetched ? Math.Max(offset, ConsumedRecord.NextOffsetAfter(fetched.Span)) : offset;
            result[partition.PartitionIndex] = new FetchedPartition(records, partition.HighWatermark, next);
        }

        return result;
    }

    private void ForgetIfStale(string topic, short errorCode)
    {
        if (KafkaException.IsStaleMetadata((ErrorCode)errorCode))
        {
            _topics.TryRemove(topic, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _byNode.Values.Append(_any).OfType<BrokerConnection>().Distinct())
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _connectLock.Dispose();
    }
}
