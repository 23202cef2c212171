namespace Osprey.Protocol;

/// <summary>
/// The one exception protocol code throws for bad input or an impossible encoding. It carries the Kafka error
/// code a broker answers with (CORRUPT_MESSAGE, INVALID_REQUEST, UNSUPPORTED_VERSION, …), so the network layer
/// maps it to a response in one place.
/// </summary>
public sealed class KafkaProtocolException : Exception
{
    public KafkaProtocolException(ErrorCode errorCode, string message)
        : base(message) => ErrorCode = errorCode;

    public KafkaProtocolException(ErrorCode errorCode, string message, Exception innerException)
        : base(message, innerException) => ErrorCode = errorCode;

    public ErrorCode ErrorCode { get; }

    internal static KafkaProtocolException Truncated(int needed, int remaining) =>
        new(ErrorCode.InvalidRequest, $"Message truncated: needed {needed} more bytes but only {remaining} remain.");
}
