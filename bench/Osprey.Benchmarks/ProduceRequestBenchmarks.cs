using System.Buffers;
using BenchmarkDotNet.Attributes;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Benchmarks;

/// <summary>Decoding and encoding a Produce v13 request: 10 topics × 10 partitions, each with a 16 KB records blob.</summary>
[MemoryDiagnoser]
public class ProduceRequestBenchmarks
{
    private const short Version = 13;
    private byte[] _encoded = [];
    private ProduceRequest _request = new();
    private readonly ArrayBufferWriter<byte> _frame = new(64 * 1024);

    [GlobalSetup]
    public void Setup()
    {
        var records = new byte[16 * 1024];
        new Random(7).NextBytes(records);
        _request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData = Enumerable.Range(0, 10).Select(t => new ProduceRequest.TopicProduceData
            {
                TopicId = new Guid(t + 1, 0, 0, new byte[8]),
                PartitionData = Enumerable.Range(0, 10).Select(p => new ProduceRequest.PartitionProduceData
                {
                    Index = p,
                    Records = records,
                }).ToList(),
            }).ToList(),
        };
        _encoded = MessageCodec.Serialize(_request, Version);
    }

    [Benchmark]
    public ProduceRequest Decode() => MessageCodec.Deserialize(new ProduceRequest(), _encoded, Version);

    [Benchmark]
    public byte[] Encode() => MessageCodec.Serialize(_request, Version);

    /// <summary>How Osprey.Client frames a request: into the connection's reused buffer, span by span.</summary>
    [Benchmark]
    public int FrameIntoReusedBuffer()
    {
        _frame.ResetWrittenCount();
        return MessageCodec.WriteRequestFrame(_request, Version, correlationId: 1, clientId: "bench", _frame);
    }
}
