using Osprey.Protocol.Primitives;

namespace Osprey.Protocol;

/// <summary>Anything with a Kafka encoding that depends on a version: every message and every struct inside one.</summary>
public interface IKafkaStruct
{
    /// <summary>Reads the fields present at <paramref name="version"/> into a fresh instance.</summary>
    void Read(ref KafkaReader reader, short version);

    /// <summary>Writes the fields present at <paramref name="version"/>; the destination was sized by <see cref="Size"/>.</summary>
    void Write(ref KafkaWriter writer, short version);

    /// <summary>The exact encoded size at <paramref name="version"/>.</summary>
    int Size(short version);

    /// <summary>True when every field holds its default value.</summary>
    bool IsDefault();
}

/// <summary>A top-level message (request, response, header or data schema) with its version range.</summary>
public interface IVersionedMessage : IKafkaStruct
{
    short LowestSupportedVersion { get; }

    short HighestSupportedVersion { get; }
}

/// <summary>A request or response body of a Kafka API.</summary>
public interface IApiMessage : IVersionedMessage
{
    ApiKey ApiKey { get; }

    bool IsRequest { get; }
}

/// <summary>What the registry knows about one API: its request versions, first flexible version and listeners.</summary>
public sealed record ApiDescriptor(
    ApiKey Key,
    string Name,
    short LowestVersion,
    short HighestVersion,
    short FirstFlexibleVersion,
    bool LatestVersionUnstable,
    bool BrokerListener)
{
    public bool IsFlexible(short version) => FirstFlexibleVersion >= 0 && version >= FirstFlexibleVersion;

    public bool Supports(short version) => version >= LowestVersion && version <= HighestVersion;
}
