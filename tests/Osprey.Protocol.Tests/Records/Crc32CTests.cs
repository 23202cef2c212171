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
}
