using System.Collections.Frozen;

namespace Osprey.Protocol;

/// <summary>Lookups over the generated API table, and the header version rules.</summary>
public static partial class ApiMessages
{
    public static bool TryGet(ApiKey key, out ApiDescriptor descriptor) => Index.ByKey.TryGetValue(key, out descriptor!);

    public static ApiDescriptor Get(ApiKey key) =>
        TryGet(key, out var descriptor)
            ? descriptor
            : throw new KafkaProtocolException(ErrorCode.UnsupportedVersion, $"Unknown API key {(short)key}.");

    /// <summary>
    /// Request header version: v2 (with tagged fields) for flexible API versions, v1 otherwise. v0 (no client id)
    /// was only used by ControlledShutdown v0, which Kafka no longer accepts.
    /// </summary>
    public static short RequestHeaderVersion(ApiKey key, short apiVersion) => Get(key).IsFlexible(apiVersion) ? (short)2 : (short)1;

    /// <summary>
    /// Response header version: v1 for flexible API versions, v0 otherwise. ApiVersions responses always use v0, so
    /// that a client that asked with a version the broker does not know can still read the error.
    /// </summary>
    public static short ResponseHeaderVersion(ApiKey key, short apiVersion) =>
        key != ApiKey.ApiVersions && Get(key).IsFlexible(apiVersion) ? (short)1 : (short)0;

    // A holder class: static initializers in different partial files run in no defined order.
    private static class Index
    {
        public static readonly FrozenDictionary<ApiKey, ApiDescriptor> ByKey = All!.ToFrozenDictionary(d => d.Key);
    }
}
