using System.Buffers;
using CsCheck;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>
/// A message written span by span into a buffer writer (how large responses reach a socket's pipe) must be the
/// same bytes as the message written into one array, whatever sizes the writer's spans come in.
/// </summary>
public class StreamingWriteTests
{
    [Theory]
    [MemberData(nameof(RoundTripTests.Cases), MemberType = typeof(RoundTripTests))]
    public void EveryMessageWritesTheSameBytesThroughSmallSpans(string messageName, short version)
    {
        var message = Schemas.Get(messageName);
        Gen.Select(MessageGen.For(message, version), Gen.Int[1, 9], Gen.Int).Sample(
            (original, spanSize, seed) =>
            {
                var expected = MessageCodec.Serialize(original, version);
                var output = new ChoppyWriter(spanSize, seed);
                var writer = new KafkaWriter(output);
                original.Write(ref writer, version);
                writer.Flush();
                Assert.Equal(expected.Length, writer.Position);
                Assert.Equal(MessageGen.Hex(expected), MessageGen.Hex(output.Written));
            },
            iter: 20);
    }

    [Fact]
    public void AFetchResponseOfMegabytesNeverAsksForALargeSpan()
    {
        var response = new FetchResponse
        {
            Responses =
            [
                new FetchResponse.FetchableTopicResponse
                {
                    Topic = "big",
                    TopicId = Guid.NewGuid(),
                    Partitions = [.. Enumerable.Range(0, 3).Select(p => new FetchResponse.PartitionData
                    {
                        PartitionIndex = p,
                        HighWatermark = 1000,
                        Records = Enumerable.Range(0, (1 << 20) + p).Select(i => (byte)(i * 7 + p)).ToArray(),
                    })],
                },
            ],
        };

        foreach (var version in new short[] { 4, 12, 16 })
        {
            var expected = MessageCodec.FrameResponse(response, version, correlationId: 42);
            var output = new ChoppyWriter(maxSpan: 64 * 1024, seed: version, largestHintAllowed: 64 * 1024);
            var written = MessageCodec.WriteResponseFrame(response, version, correlationId: 42, output);
            Assert.Equal(expected.Length, written);
            Assert.True(expected.AsSpan().SequenceEqual(output.Written), $"v{version}: the streamed frame differs");
            Assert.True(output.Spans > expected.Length / (64 * 1024), $"v{version}: written in {output.Spans} spans");
        }
    }

    [Fact]
    public void ALargeProduceRequestFramesTheSameIntoAReusedBuffer()
    {
        var records = Enumerable.Range(0, 3 << 20).Select(i => (byte)(i * 13)).ToArray();
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = "big", PartitionData = [new ProduceRequest.PartitionProduceData { Index = 2, Records = records }] }],
        };
        var small = new ProduceRequest { Acks = 1, TimeoutMs = 5 };
        var reused = new ArrayBufferWriter<byte>(64 * 1024);
        foreach (var (message, correlationId) in new[] { (request, 1), (small, 2), (request, 3) })
        {
            reused.ResetWrittenCount();
            var written = MessageCodec.WriteRequestFrame(message, 9, correlationId, "client-a", reused);
            var expected = MessageCodec.FrameRequest(message, 9, correlationId, "client-a");
            Assert.Equal(expected.Length, written);
            Assert.True(expected.AsSpan().SequenceEqual(reused.WrittenSpan), $"request {correlationId} differs");
        }
    }

    [Fact]
    public void ASmallResponseStillGoesIntoOneSpan()
    {
        var response = new ApiVersionsResponse { ApiKeys = [new ApiVersionsResponse.ApiVersion { ApiKey = 1, MinVersion = 4, MaxVersion = 17 }] };
        var output = new ChoppyWriter(maxSpan: 4096, seed: 1);
        var written = MessageCodec.WriteResponseFrame(response, 3, correlationId: 7, output);
        Assert.Equal(1, output.Spans);
        Assert.Equal(MessageCodec.FrameResponse(response, 3, correlationId: 7), output.Written);
        Assert.Equal(written, output.Written.Length);
    }

    [Fact]
    public void AFixedSpanStillRefusesToBeOverrun()
    {
        var buffer = new byte[3];
        var thrown = Record.Exception(() =>
        {
            var writer = new KafkaWriter(buffer);
            writer.WriteInt32(1);
        });
        Assert.IsType<ArgumentOutOfRangeException>(thrown);
    }

    /// <summary>Hands out spans of at most <c>maxSpan</c> bytes (random sizes, at least the hint) and keeps what was advanced.</summary>
    private sealed class ChoppyWriter(int maxSpan, int seed, int largestHintAllowed = int.MaxValue) : IBufferWriter<byte>
    {
        private readonly Random _random = new(seed);
        private readonly List<byte> _written = [];
        private byte[] _current = [];

        public byte[] Written => [.. _written];

        public int Spans { get; private set; }

        public void Advance(int count)
        {
            Assert.InRange(count, 0, _current.Length);
            _written.AddRange(_current.AsSpan(0, count).ToArray());
            _current = [];
        }

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            Assert.True(sizeHint <= largestHintAllowed, $"asked for a span of {sizeHint} bytes");
            Spans++;
            _current = new byte[Math.Max(sizeHint, _random.Next(1, maxSpan + 1))];
            return _current;
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
