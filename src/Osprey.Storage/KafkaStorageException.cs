using Osprey.Protocol;

namespace Osprey.Storage;

/// <summary>
/// A log operation failed on disk (I/O error, disk full, a file that vanished). Carries the Kafka error code the
/// broker answers with: KAFKA_STORAGE_ERROR, or a more specific one (OFFSET_OUT_OF_RANGE, MESSAGE_TOO_LARGE, …)
/// when the request itself is at fault.
/// </summary>
public class KafkaStorageException : Exception
{
    public KafkaStorageException(ErrorCode errorCode, string message)
        : base(message) => ErrorCode = errorCode;

    public KafkaStorageException(ErrorCode errorCode, string message, Exception innerException)
        : base(message, innerException) => ErrorCode = errorCode;

    public ErrorCode ErrorCode { get; }

    internal static KafkaStorageException Io(string what, Exception e) =>
        new(ErrorCode.KafkaStorageError, $"{what}: {e.Message}", e);
}
