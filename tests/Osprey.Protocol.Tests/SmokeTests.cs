using Osprey.Protocol.Messages;

namespace Osprey.Protocol.Tests;

public class SmokeTests
{
    [Fact]
    public void ApiVersionsRequestV3RoundTrips()
    {
        var request = new ApiVersionsRequest { ClientSoftwareName = "osprey", ClientSoftwareVersion = "1.0" };
        var bytes = MessageCodec.Serialize(request, 3);
        Assert.Equal(new byte[] { 7, (byte)'o', (byte)'s', (byte)'p', (byte)'r', (byte)'e', (byte)'y', 4, (byte)'1', (byte)'.', (byte)'0', 0 }, bytes);
        var decoded = MessageCodec.Deserialize(new ApiVersionsRequest(), bytes, 3);
        Assert.Equal("osprey", decoded.ClientSoftwareName);
    }
}
