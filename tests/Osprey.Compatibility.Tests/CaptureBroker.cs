using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Compatibility.Tests;

/// <summary>
/// A tiny listener that answers just enough (ApiVersions, Metadata, Produce) for a real client to produce one
/// message, and keeps the first request of each API exactly as it arrived. Every answer is encoded by Osprey's
/// codec, so the client accepting them is evidence too.
/// </summary>
internal sealed class CaptureBroker : IAsyncDisposable
{
    public const long ProduceBaseOffset = 42;
    public const string TopicName = "golden";

    // librdkafka infers features from the APIs offered: record batch v2 needs Produce v3+ with Fetch v4+ (else it
    // falls back to the old message set format), and lz4 needs FindCoordinator (else it sends lz4 batches
    // uncompressed). So those are offered even where this listener never answers them.
    private static readonly ApiKey[] Offered =
    [
        ApiKey.ApiVersions, ApiKey.Metadata, ApiKey.Produce, ApiKey.Fetch, ApiKey.CreateTopics, ApiKey.InitProducerId,
        ApiKey.FindCoordinator,
    ];

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _acceptLoop;

    public CaptureBroker()
    {
        _listener.Start();
        _acceptLoop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Request frames (header and body, without the size prefix) of each API, in arrival order.</summary>
    public ConcurrentDictionary<ApiKey, ConcurrentQueue<byte[]>> All { get; } = new();

    /// <summary>The first request frame of each API.</summary>
    public IReadOnlyDictionary<ApiKey, byte[]> Captured => All.ToDictionary(p => p.Key, p => p.Value.First());

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                lock (_connections)
                {
                    _connections.Add(ServeAsync(client));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var sizeBuffer = new byte[4];
        try
        {
            while (true)
            {
                await stream.ReadExactlyAsync(sizeBuffer, _stop.Token);
                var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(sizeBuffer)];
                await stream.ReadExactlyAsync(frame, _stop.Token);
                var response = Answer(frame);
                if (response is null)
                {
                    return; // an API this listener does not answer: close, as a broker would
                }

                if ((ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame) == ApiKey.Fetch)
                {
                    await Task.Delay(50, _stop.Token); // stand-in for a long poll, so the client does not spin
                }

                await stream.WriteAsync(response, _stop.Token);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or OperationCanceledException)
        {
        }
    }

    private byte[]? Answer(byte[] frame)
    {
        var key = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame);
        var version = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(2));
        All.GetOrAdd(key, _ => new ConcurrentQueue<byte[]>()).Enqueue(frame);
        var reader = new KafkaReader(frame);
        var header = new RequestHeader();
        header.Read(ref reader, ApiMessages.RequestHeaderVersion(key, version));
        var request = ApiMessages.CreateRequest(key);
        request.Read(ref reader, version);
        IApiMessage? response = key switch
        {
            ApiKey.ApiVersions => new ApiVersionsResponse
            {
                ApiKeys = Offered.Select(k => ApiMessages.Get(k)).Select(d => new ApiVersionsResponse.ApiVersion
                {
                    ApiKey = (short)d.Key,
                    MinVersion = d.LowestVersion,
                    MaxVersion = d.HighestVersion,
                }).ToList(),
            },
            ApiKey.Metadata => Metadata((MetadataRequest)request),
            ApiKey.Produce => Produce((ProduceRequest)request),
            ApiKey.Fetch => Fetch((FetchRequest)request),
            ApiKey.CreateTopics => CreateTopics((CreateTopicsRequest)request),
            ApiKey.InitProducerId => new InitProducerIdResponse { ProducerId = 4242, ProducerEpoch = 0 },
            _ => null,
        };
        if (response is null)
        {
            return null;
        }

        return MessageCodec.FrameResponse(response, version, header.CorrelationId);
    }

    // Like a broker: null asks for every topic, an empty list for brokers only.
    private MetadataResponse Metadata(MetadataRequest request) => new()
    {
        Brokers = [new MetadataResponse.MetadataResponseBroker { NodeId = 1, Host = "127.0.0.1", Port = Port }],
        ClusterId = "capture-cluster",
        ControllerId = 1,
        Topics = request.Topics is { } asked && !asked.Any(t => t.Name == TopicName) ? [] :
        [
            new MetadataResponse.MetadataResponseTopic
            {
                Name = TopicName,
                TopicId = Guid.Parse("6f1c3b2a-0000-4000-8000-000000000001"),
                Partitions =
                [
                    new MetadataResponse.MetadataResponsePartition
                    {
                        PartitionIndex = 0, LeaderId = 1, LeaderEpoch = 0, ReplicaNodes = [1], IsrNodes = [1],
                    },
                ],
            },
        ],
    };

    private static ProduceResponse Produce(ProduceRequest request) => new()
    {
        Responses = request.TopicData.Select(t => new ProduceResponse.TopicProduceResponse
        {
            Name = t.Name,
            TopicId = t.TopicId,
            PartitionResponses = t.PartitionData.Select(p => new ProduceResponse.PartitionProduceResponse
            {
                Index = p.Index,
                BaseOffset = ProduceBaseOffset,
                LogAppendTimeMs = -1,
            }).ToList(),
        }).ToList(),
    };

    private static FetchResponse Fetch(FetchRequest request) => new()
    {
        Responses = request.Topics.Select(t => new FetchResponse.FetchableTopicResponse
        {
            Topic = t.Topic,
            TopicId = t.TopicId,
            Partitions = t.Partitions.Select(p => new FetchResponse.PartitionData
            {
                PartitionIndex = p.Partition,
                HighWatermark = 0,
                LastStableOffset = 0,
                LogStartOffset = 0,
                Records = ReadOnlyMemory<byte>.Empty,
            }).ToList(),
        }).ToList(),
    };

    private static CreateTopicsResponse CreateTopics(CreateTopicsRequest request) => new()
    {
        Topics = request.Topics.Select(t => new CreateTopicsResponse.CreatableTopicResult
        {
            Name = t.Name,
            NumPartitions = t.NumPartitions,
            ReplicationFactor = t.ReplicationFactor,
        }).ToList(),
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _acceptLoop;
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        await Task.WhenAll(connections);
        _stop.Dispose();
    }
}
