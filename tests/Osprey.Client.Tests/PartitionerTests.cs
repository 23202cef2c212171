using System.Text;

namespace Osprey.Client.Tests;

public class PartitionerTests
{
    // Kafka's own murmur2 test vectors (UtilsTest).
    [Theory]
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void Murmur2MatchesKafka(string key, int expected) => Assert.Equal(expected, Partitioner.Murmur2(Encoding.UTF8.GetBytes(key)));
}
