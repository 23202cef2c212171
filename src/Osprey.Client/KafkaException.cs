using Osprey.Protocol;

namespace Osprey.Client;

/// <summary>An error a broker answered with (or the client met): the Kafka error code and a readable message.</summary>
public sealed class KafkaException(ErrorCode errorCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorCode ErrorCode { get; } = errorCode;

    /// <summary>Errors that say the client's idea of where a partition lives is out of date.</summary>
    public static bool IsStaleMetadata(ErrorCode code) =>
        code is ErrorCode.NotLeaderOrFollower or ErrorCode.LeaderNotAvailable or ErrorCode.UnknownTopicOrPartition or ErrorCode.FencedLeaderEpoch or ErrorCode.UnknownLeaderEpoch;

    /// <summary>Throws for any error code but NONE; the message names the subject and Kafka's name for the code.</summary>
    public static void ThrowIfError(short errorCode, string subject, string? detail = null)
    {
        if (errorCode != 0)
        {
            var code = (ErrorCode)errorCode;
            throw new KafkaException(code, detail is null ? $"{subject}: {code.KafkaName()}" : $"{subject}: {detail} ({code.KafkaName()})");
        }
    }
}
