using System.Text;
using Osprey.Protocol.Records;

namespace Osprey.Protocol.Tests.Records;

public class Crc32CTests
{
    [Fact]
    public void CheckValueMatchesTheStandard() =>
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));

    [Fact]
    public void EmptyInputIsZero() => Assert.Equal(0u, Crc32C.Compute([]));

    [Fact]
    public void MatchesBitwiseReferenceForEveryLengthAndAlignment()
    {
        var data = new byte[300];
        new Random(42).NextBytes(data);
        for (var start = 0; start < 8; start++)
        {
            for (var length = 0; length + start <= data.Length; length += 1 + length / 8)
            {
                var slice = data.AsSpan(start, length);
                Assert.Equal(RecordTestHelpers.ReferenceCrc32C(slice), Crc32C.Compute(slice));
            }
        }
    }

    [Fact]
    public void UpdateChainsOverSeveralSpans()
    {
        var data = Encoding.ASCII.GetBytes("123456789 and then some more bytes");
        var state = Crc32C.Update(0xFFFFFFFF, data.AsSpan(0, 13));
        state = Crc32C.Update(state, data.AsSpan(13));
        Assert.Equal(Crc32C.Compute(data), ~state);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void MatchesBitwiseReferenceAroundTheThreeLaneSizes(int start)
    {
        var data = new byte[(4 * Crc32C.ChunkBytes) + 64];
        new Random(7 + start).NextBytes(data);
        int[] lengths = [Crc32C.ChunkBytes - 1, Crc32C.ChunkBytes, Crc32C.ChunkBytes + 1, Crc32C.ChunkBytes + 8, (2 * Crc32C.ChunkBytes) + 7, (3 * Crc32C.ChunkBytes) + Crc32C.LaneBytes, 4 * Crc32C.ChunkBytes];
        foreach (var length in lengths)
        {
            var slice = data.AsSpan(start, length);
            Assert.Equal(RecordTestHelpers.ReferenceCrc32C(slice), Crc32C.Compute(slice));
        }
    }

    [Fact]
    public void UpdateChainedAtRandomSplitsOfALongInputEqualsOneCompute()
    {
        var random = new Random(11);
        var data = new byte[200_000];
        random.NextBytes(data);
        var whole = RecordTestHelpers.ReferenceCrc32C(data);
        Assert.Equal(whole, Crc32C.Compute(data));
        for (var trial = 0; trial < 50; trial++)
        {
            var state = 0xFFFFFFFFu;
            var position = 0;
            while (position < data.Length)
            {
                var length = Math.Min(data.Length - position, random.Next(0, 3) switch { 0 => random.Next(0, 64), 1 => random.Next(0, 4 * Crc32C.ChunkBytes), _ => random.Next(0, 50_000) });
                state = Crc32C.Update(state, data.AsSpan(position, length));
                position += length;
            }

            Assert.Equal(whole, ~state);
        }
    }
}
