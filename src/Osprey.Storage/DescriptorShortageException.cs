using System.Globalization;
using Osprey.Protocol;

namespace Osprey.Storage;

/// <summary>
/// A file could not be opened because the process (EMFILE) or the system (ENFILE) has no descriptor left. Said as
/// such, with the limit and what to do, rather than as the bare I/O error (or worse, as whatever a later allocation
/// makes of it). Clients see KAFKA_STORAGE_ERROR.
/// </summary>
public sealed class DescriptorShortageException : KafkaStorageException
{
    /// <summary>Descriptors kept free beyond the logs' own: connections, threads (each needs some), sockets, files.</summary>
    public const int Reserve = 256;

    private const string Advice = "Each partition keeps its active segment open, plus up to osprey.log.open.segments.max older segments and one per connection; " +
        "raise the limit (ulimit -n, or LimitNOFILE= for a systemd service) or lower osprey.log.open.segments.max.";

    public DescriptorShortageException(string path, Exception innerException)
        : base(ErrorCode.KafkaStorageError, $"Out of file descriptors opening {path}: {Usage()}. {Advice}", innerException)
    {
    }

    private DescriptorShortageException(string message)
        : base(ErrorCode.KafkaStorageError, message)
    {
    }

    /// <summary>
    /// Null when <paramref name="partitions"/> more logs fit in the descriptor limit with <see cref="Reserve"/> to
    /// spare; otherwise the error to stop the start with, before the runtime runs out while starting a thread (which
    /// .NET reports as an OutOfMemoryException).
    /// </summary>
    public static DescriptorShortageException? CheckRoomFor(int partitions)
    {
        var limit = NativeFileSystem.OpenFileLimit();
        var open = NativeFileSystem.OpenFileCount();
        return open < 0 || open + (long)partitions + Reserve <= limit
            ? null
            : new DescriptorShortageException($"Not enough file descriptors for {partitions} partition logs: {Usage()}, and they need {partitions} more plus about {Reserve} to spare. {Advice}");
    }

    private static string Usage()
    {
        var limit = NativeFileSystem.OpenFileLimit();
        var open = NativeFileSystem.OpenFileCount();
        var shown = limit >= int.MaxValue ? "unlimited" : limit.ToString(CultureInfo.InvariantCulture);
        return $"the process may have {shown} open (ulimit -n) and has {(open < 0 ? "?" : open.ToString(CultureInfo.InvariantCulture))}";
    }
}
