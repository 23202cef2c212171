using Osprey.Protocol.Messages;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>The rules the generator encodes, each shown on a real message.</summary>
public class EncodingRulesTests
{
    [Fact]
    public void ANonDefaultValueInAVersionWithoutTheFieldIsRefused()
    {
        // LastFetchedEpoch exists from Fetch v12 and is not ignorable.
        var request = new FetchRequest { Topics = [LastFetchedEpochHolder()] };
        var e = Assert.Throws<KafkaProtocolException>(() => MessageCodec.Serialize(request, 11));
        Assert.Equal(ErrorCode.UnsupportedVersion, e.ErrorCode);
        Assert.Contains("LastFetchedEpoch", e.Message, StringComparison.Ordinal);
        Assert.NotEmpty(MessageCodec.Serialize(request, 12));
    }

    private static FetchRequest.FetchTopic LastFetchedEpochHolder() => new()
    {
        Topic = "t",
        Partitions = [new FetchRequest.FetchPartition { Partition = 0, LastFetchedEpoch = 5 }],
    };

    [Fact]
    public void AnIgnorableFieldIsDroppedInVersionsWithoutIt()
    {
        // RackId exists from Fetch v11 and is ignorable.
        var request = new FetchRequest { RackId = "rack-a" };
        var v10 = MessageCodec.Deserialize(new FetchRequest(), MessageCodec.Serialize(request, 10), 10);
        Assert.Equal("", v10.RackId);
        var v11 = MessageCodec.Deserialize(new FetchRequest(), MessageCodec.Serialize(request, 11), 11);
        Assert.Equal("rack-a", v11.RackId);
    }

    [Fact]
    public void NullIsRefusedWhereTheVersionIsNotNullable()
    {
        // Metadata Topics is nullable from v1.
        var request = new MetadataRequest { Topics = null };
        Assert.Equal(ErrorCode.InvalidRequest, Assert.Throws<KafkaProtocolException>(() => MessageCodec.Serialize(request, 0)).ErrorCode);
        var bytes = MessageCodec.Serialize(request, 1);
        Assert.Equal("ffffffff", Convert.ToHexString(bytes).ToLowerInvariant());
        Assert.Null(MessageCodec.Deserialize(new MetadataRequest(), bytes, 1).Topics);

        // The same bytes at v0, where null is not allowed, are refused on read.
        var e = Assert.Throws<KafkaProtocolException>(() => MessageCodec.Deserialize(new MetadataRequest(), bytes, 0));
        Assert.Equal(ErrorCode.InvalidRequest, e.ErrorCode);
    }

    [Fact]
    public void CompactAndClassicEncodingsDifferAsTheSpecSays()
    {
        var request = new SaslHandshakeRequest { Mechanism = "PLAIN" };
        // SaslHandshake is never flexible: int16 length prefix.
        Assert.Equal("0005504c41494e", Convert.ToHexString(MessageCodec.Serialize(request, 1)).ToLowerInvariant());

        var topics = new DeleteTopicsRequest { TopicNames = ["ab"], TimeoutMs = 1 };
        // v3 classic: int32 count, int16 string length, int32 timeout.
        Assert.Equal("000000010002616200000001", Convert.ToHexString(MessageCodec.Serialize(topics, 3)).ToLowerInvariant());
        // v4 flexible: uvarint count+1, uvarint length+1, int32 timeout, empty tagged fields.
        Assert.Equal("020361620000000100", Convert.ToHexString(MessageCodec.Serialize(topics, 4)).ToLowerInvariant());
    }

    [Fact]
    public void UnknownTaggedFieldsAreSkipped()
    {
        // ApiVersions v3: name "a", version "b", then 2 tagged fields: tag 0x20 (2 bytes) and tag 0x7f (0 bytes).
        var bytes = Convert.FromHexString("0261026202" + "2002abcd" + "7f00");
        var request = MessageCodec.Deserialize(new ApiVersionsRequest(), bytes, 3);
        Assert.Equal("a", request.ClientSoftwareName);
        Assert.Equal("b", request.ClientSoftwareVersion);
    }

    [Fact]
    public void KnownTaggedFieldsAreReadAndWrittenOnlyWhenNotDefault()
    {
        var request = new FetchRequest { ClusterId = "c1" };
        var bytes = MessageCodec.Serialize(request, 12);
        Assert.Equal("c1", MessageCodec.Deserialize(new FetchRequest(), bytes, 12).ClusterId);
        var withoutTag = MessageCodec.Serialize(new FetchRequest(), 12);
        // Tag 0, size 3, compact string "c1" (length 2+1): five more bytes, and the tag count 1 instead of 0.
        Assert.Equal(withoutTag.Length + 5, bytes.Length);
        Assert.Equal(0, withoutTag[^1]);
    }

    [Fact]
    public void ATaggedFieldWithTrailingBytesIsRefused()
    {
        // FetchRequest v12 ClusterId (tag 0) with size 4 but a 3-byte compact string inside.
        var baseBytes = MessageCodec.Serialize(new FetchRequest(), 12);
        var bytes = baseBytes[..^1].Concat(Convert.FromHexString("0100040363310a")).ToArray();
        var e = Assert.Throws<KafkaProtocolException>(() => MessageCodec.Deserialize(new FetchRequest(), bytes, 12));
        Assert.Equal(ErrorCode.InvalidRequest, e.ErrorCode);
    }

    [Fact]
    public void RequestHeaderV2KeepsTheClientIdClassic()
    {
        var header = new RequestHeader { RequestApiKey = 3, RequestApiVersion = 12, CorrelationId = 7, ClientId = "cli" };
        // ClientId is a classic nullable string even in v2; the tagged fields follow it.
        Assert.Equal("0003000c000000070003636c6900", Convert.ToHexString(MessageCodec.Serialize(header, 2)).ToLowerInvariant());
        // v0 has no client id: writing one there is refused rather than silently dropped.
        Assert.Equal(ErrorCode.UnsupportedVersion, Assert.Throws<KafkaProtocolException>(() => MessageCodec.Serialize(header, 0)).ErrorCode);
        header.ClientId = "";
        Assert.Equal("0003000c00000007", Convert.ToHexString(MessageCodec.Serialize(header, 0)).ToLowerInvariant());
        Assert.Equal("0003000c00000007ffff", Convert.ToHexString(MessageCodec.Serialize(new RequestHeader { RequestApiKey = 3, RequestApiVersion = 12, CorrelationId = 7, ClientId = null }, 1)).ToLowerInvariant());
    }

    [Fact]
    public void HeaderVersionsFollowFlexibility()
    {
        Assert.Equal(1, ApiMessages.RequestHeaderVersion(ApiKey.Metadata, 8));
        Assert.Equal(2, ApiMessages.RequestHeaderVersion(ApiKey.Metadata, 9));
        Assert.Equal(0, ApiMessages.ResponseHeaderVersion(ApiKey.Metadata, 8));
        Assert.Equal(1, ApiMessages.ResponseHeaderVersion(ApiKey.Metadata, 9));
        // ApiVersions answers in header v0 even at flexible versions.
        Assert.Equal(2, ApiMessages.RequestHeaderVersion(ApiKey.ApiVersions, 3));
        Assert.Equal(0, ApiMessages.ResponseHeaderVersion(ApiKey.ApiVersions, 3));
    }

    [Fact]
    public void VersionsOutsideTheRangeAreUnsupported()
    {
        var e = Assert.Throws<KafkaProtocolException>(() => MessageCodec.Serialize(new ProduceRequest(), 2));
        Assert.Equal(ErrorCode.UnsupportedVersion, e.ErrorCode);
        var bytes = MessageCodec.Serialize(new ProduceRequest(), 13);
        Assert.Equal(ErrorCode.UnsupportedVersion, Assert.Throws<KafkaProtocolException>(() => MessageCodec.Deserialize(new ProduceRequest(), bytes, 14)).ErrorCode);
    }

    [Fact]
    public void UuidsAreBigEndianOnTheWire()
    {
        var id = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        var topic = new MetadataRequest.MetadataRequestTopic { TopicId = id, Name = null };
        var bytes = MessageCodec.Serialize(new MetadataRequest { Topics = [topic] }, 12);
        Assert.Equal("0200112233445566778899aabbccddeeff0000", Convert.ToHexString(bytes)[..38].ToLowerInvariant());
    }

    [Fact]
    public void NullableStructsCarryAMarkerByte()
    {
        // ConsumerGroupHeartbeatResponse.Assignment is a nullable struct: -1 for null.
        var response = new ConsumerGroupHeartbeatResponse { Assignment = null };
        var bytes = MessageCodec.Serialize(response, 0);
        Assert.Null(MessageCodec.Deserialize(new ConsumerGroupHeartbeatResponse(), bytes, 0).Assignment);
        var present = new ConsumerGroupHeartbeatResponse { Assignment = new ConsumerGroupHeartbeatResponse.AssignmentData() };
        var presentBytes = MessageCodec.Serialize(present, 0);
        Assert.Equal(bytes.Length + 2, presentBytes.Length); // marker 1 instead of -1, plus an empty array and tag buffer
        Assert.NotNull(MessageCodec.Deserialize(new ConsumerGroupHeartbeatResponse(), presentBytes, 0).Assignment);
    }
}
