using CsCheck;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>
/// Every message at every version: random values written, read back, compared field by field, and written
/// again to the same bytes. Size must equal the bytes written (Deserialize refuses trailing bytes).
/// </summary>
public class RoundTripTests
{
    public static TheoryData<string, short> Cases => Schemas.MessageVersions();

    [Theory]
    [MemberData(nameof(Cases))]
    public void RandomValuesRoundTrip(string messageName, short version)
    {
        var message = Schemas.Get(messageName);
        MessageGen.For(message, version).Sample(
            original =>
            {
                var bytes = MessageCodec.Serialize(original, version);
                var decoded = MessageCodec.Deserialize(Schemas.Create(message), bytes, version);
                var difference = MessageGen.Difference(message, message.Fields, original, decoded, version, message.Name);
                Assert.True(difference is null, difference);
                var again = MessageCodec.Serialize(decoded, version);
                Assert.Equal(MessageGen.Hex(bytes), MessageGen.Hex(again));
            },
            iter: 60);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DefaultMessageRoundTrips(string messageName, short version)
    {
        var message = Schemas.Get(messageName);
        var bytes = MessageCodec.Serialize(Schemas.Create(message), version);
        var decoded = MessageCodec.Deserialize(Schemas.Create(message), bytes, version);
        Assert.True(decoded.IsDefault(), $"{messageName} v{version} decoded from defaults is not default");
    }
}
