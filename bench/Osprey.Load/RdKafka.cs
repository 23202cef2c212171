using System.Runtime.InteropServices;
using System.Text;

namespace Osprey.Load;

/// <summary>
/// The few librdkafka C calls a native load generator needs (librdkafka's own rdkafka_performance works the same
/// way): the same library Confluent.Kafka loads, called without Confluent.Kafka's per-message managed work (message
/// objects, delivery-report marshalling, a GC handle per record), so that the client's cost per record is
/// librdkafka's own.
/// </summary>
internal static unsafe partial class RdKafka
{
    private const string Lib = "librdkafka";

    public const int Producer = 0;
    public const int Consumer = 1;
    public const int PartitionUnassigned = -1;
    public const int MessageFlagCopy = 0x2;
    public const long OffsetBeginning = -2;
    public const int ErrorQueueFull = -184;
    public const int ErrorPartitionEof = -191;
    public const int ErrorTimedOut = -185;

    static RdKafka()
    {
        // Confluent.Kafka loads runtimes/linux-x64/native/librdkafka.so from the output (the Debian-safe build, see
        // tests/Directory.Build.targets); resolve ours to the same file so that both use one library.
        NativeLibrary.SetDllImportResolver(typeof(RdKafka).Assembly, static (name, assembly, path) =>
        {
            if (name != Lib)
            {
                return IntPtr.Zero;
            }

            var local = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "librdkafka.so");
            return File.Exists(local) ? NativeLibrary.Load(local) : NativeLibrary.Load(name, assembly, path);
        });
    }

    /// <summary>
    /// librdkafka's rd_kafka_message_t on 64-bit platforms: error, topic, partition, payload, length, key, key
    /// length, offset, private.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Message
    {
        public int Error;
        public IntPtr Topic;
        public int Partition;
        public IntPtr Payload;
        public nuint Length;
        public IntPtr Key;
        public nuint KeyLength;
        public long Offset;
        public IntPtr Private;
    }

    /// <summary>A client (producer or consumer) created from settings; every setting is checked by librdkafka.</summary>
    public static IntPtr Create(int type, IEnumerable<KeyValuePair<string, string>> settings) => Create(type, settings, null);

    /// <summary>A producer whose delivery reports go to <paramref name="onDelivery"/> (served by <see cref="Poll"/>).</summary>
    public static IntPtr Create(int type, IEnumerable<KeyValuePair<string, string>> settings, delegate* unmanaged<IntPtr, Message*, IntPtr, void> onDelivery)
    {
        var conf = ConfNew();
        var error = new byte[512];
        foreach (var (key, value) in settings)
        {
            if (ConfSet(conf, key, value, error, error.Length) != 0)
            {
                ConfDestroy(conf);
                throw new ArgumentException($"librdkafka refused {key}={value}: {Text(error)}");
            }
        }

        if (onDelivery != null)
        {
            ConfSetDeliveryCallback(conf, onDelivery);
        }

        var client = New(type, conf, error, error.Length);
        if (client == IntPtr.Zero)
        {
            ConfDestroy(conf);
            throw new InvalidOperationException("rd_kafka_new failed: " + Text(error));
        }

        return client;
    }

    private static string Text(byte[] error) => Encoding.UTF8.GetString(error, 0, Math.Max(0, Array.IndexOf(error, (byte)0)));

    public static string ErrorName(int error) => Marshal.PtrToStringUTF8(Err2Str(error)) ?? error.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_conf_new")]
    private static partial IntPtr ConfNew();

    [LibraryImport(Lib, EntryPoint = "rd_kafka_conf_destroy")]
    private static partial void ConfDestroy(IntPtr conf);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_conf_set", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ConfSet(IntPtr conf, string name, string value, byte[] error, nint errorSize);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_conf_set_dr_msg_cb")]
    private static partial void ConfSetDeliveryCallback(IntPtr conf, delegate* unmanaged<IntPtr, Message*, IntPtr, void> callback);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_new")]
    private static partial IntPtr New(int type, IntPtr conf, byte[] error, nint errorSize);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_destroy")]
    public static partial void Destroy(IntPtr client);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_topic_new", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr TopicNew(IntPtr client, string topic, IntPtr conf);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_topic_destroy")]
    public static partial void TopicDestroy(IntPtr topic);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_produce")]
    public static partial int Produce(IntPtr topic, int partition, int flags, byte* payload, nuint length, byte* key, nuint keyLength, IntPtr opaque);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_last_error")]
    public static partial int LastError();

    [LibraryImport(Lib, EntryPoint = "rd_kafka_err2str")]
    private static partial IntPtr Err2Str(int error);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_poll")]
    public static partial int Poll(IntPtr client, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_flush")]
    public static partial int Flush(IntPtr client, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_queue_new")]
    public static partial IntPtr QueueNew(IntPtr client);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_queue_destroy")]
    public static partial void QueueDestroy(IntPtr queue);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_consume_start_queue")]
    public static partial int ConsumeStartQueue(IntPtr topic, int partition, long offset, IntPtr queue);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_consume_stop")]
    public static partial int ConsumeStop(IntPtr topic, int partition);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_consume_batch_queue")]
    public static partial nint ConsumeBatchQueue(IntPtr queue, int timeoutMs, Message** messages, nuint size);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_message_destroy")]
    public static partial void MessageDestroy(Message* message);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_metadata")]
    private static partial int Metadata(IntPtr client, int allTopics, IntPtr onlyTopic, IntPtr* metadata, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "rd_kafka_metadata_destroy")]
    private static partial void MetadataDestroy(IntPtr metadata);

    /// <summary>Fetches the topic's metadata, so the client knows its partitions' leaders (and is connected).</summary>
    public static void LoadMetadata(IntPtr client, IntPtr topic, int timeoutMs)
    {
        IntPtr metadata;
        var error = Metadata(client, 0, topic, &metadata, timeoutMs);
        if (error != 0)
        {
            throw new InvalidOperationException($"metadata request failed: {ErrorName(error)}");
        }

        MetadataDestroy(metadata);
    }

    [LibraryImport(Lib, EntryPoint = "rd_kafka_version_str")]
    private static partial IntPtr VersionStr();

    public static string Version => Marshal.PtrToStringUTF8(VersionStr()) ?? "?";
}
