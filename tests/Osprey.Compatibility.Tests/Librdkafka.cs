using Confluent.Kafka;

namespace Osprey.Compatibility.Tests;

public class LibrdkafkaTests
{
    [Fact]
    public void TheBundledLibrdkafkaIsTheOneLoaded()
    {
        Assert.StartsWith("2.16", Library.VersionString, StringComparison.Ordinal);
    }
}
