using System.Buffers.Binary;

namespace Osprey.Storage;

/// <summary>An aborted transaction: its producer, its first offset and the offset of its ABORT marker.</summary>
public readonly record struct AbortedTransaction(long ProducerId, long FirstOffset, long LastOffset, long LastStableOffset);

/// <summary>
/// The aborted-transaction index of one segment (<c>.txnindex</c>), Kafka's layout: entries of 34 bytes,
/// big-endian <c>[version int16 = 0][producer id int64][first offset int64][last offset int64]
/// [last stable offset int64]</c>, one per ABORT marker written into the segment. read_committed fetches use it
/// to tell consumers which producers' records to skip in the range they read. The file exists only once the
/// segment has an entry; entries are kept in memory too (there are few), copied on write so that fetches read them
/// without the log's lock while appends go on.
/// </summary>
public sealed class TransactionIndex
{
    public const int EntrySize = 34;
    private const short Version = 0;

    private volatile AbortedTransaction[] _entries = [];
    private volatile bool _unsynced;

    private TransactionIndex(string path)
    {
        Path = path;
    }

    public string Path { get; private set; }

    public IReadOnlyList<AbortedTransaction> Entries => _entries;

    /// <summary>Opens the index at <paramref name="path"/>, reading its entries; a torn last entry is dropped.</summary>
    public static TransactionIndex Open(string path)
    {
        var index = new TransactionIndex(path);
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            for (var i = 0; i + EntrySize <= bytes.Length; i += EntrySize)
            {
                var entry = bytes.AsSpan(i, EntrySize);
                if (BinaryPrimitives.ReadInt16BigEndian(entry) != Version)
                {
                    throw new InvalidDataException($"{path}: entry {i / EntrySize} has an unknown version.");
                }

                index._entries = [.. index._entries, new AbortedTransaction(
                    BinaryPrimitives.ReadInt64BigEndian(entry[2..]),
                    BinaryPrimitives.ReadInt64BigEndian(entry[10..]),
                    BinaryPrimitives.ReadInt64BigEndian(entry[18..]),
                    BinaryPrimitives.ReadInt64BigEndian(entry[26..]))];
            }

            if (bytes.Length % EntrySize != 0)
            {
                index.Rewrite();
            }
        }

        return index;
    }

    public bool Contains(long producerId, long lastOffset) => _entries.Any(e => e.ProducerId == producerId && e.LastOffset == lastOffset);

    public void Append(AbortedTransaction entry)
    {
        Span<byte> bytes = stackalloc byte[EntrySize];
        Encode(entry, bytes);
        // Opened for the moment only: aborts are rare, and a segment should not hold a descriptor for them.
        using (var file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            file.Write(bytes);
        }

        _unsynced = true;
        _entries = [.. _entries, entry];
    }

    /// <summary>Forgets the entries of markers at or after <paramref name="offset"/>.</summary>
    public void TruncateTo(long offset)
    {
        if (_entries.Any(e => e.LastOffset >= offset))
        {
            _entries = [.. _entries.Where(e => e.LastOffset < offset)];
            Rewrite();
        }
    }

    /// <summary>Forgets every entry (before the segment is scanned again in recovery).</summary>
    public void Reset()
    {
        if (_entries.Length > 0 || File.Exists(Path))
        {
            _entries = [];
            Rewrite();
        }
    }

    /// <summary>Makes the entries appended since the last flush durable.</summary>
    public void Flush()
    {
        if (!_unsynced || !File.Exists(Path))
        {
            return;
        }

        using (var file = File.OpenHandle(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            RandomAccess.FlushToDisk(file);
        }

        _unsynced = false;
    }

    /// <summary>Follows the segment's files to a new name.</summary>
    public void MovedTo(string path) => Path = path;

    private void Rewrite()
    {
        var entries = _entries;
        if (entries.Length == 0)
        {
            File.Delete(Path);
            return;
        }

        var bytes = new byte[entries.Length * EntrySize];
        for (var i = 0; i < entries.Length; i++)
        {
            Encode(entries[i], bytes.AsSpan(i * EntrySize));
        }

        var temporary = Path + ".tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, Path, overwrite: true);
    }

    private static void Encode(AbortedTransaction entry, Span<byte> bytes)
    {
        BinaryPrimitives.WriteInt16BigEndian(bytes, Version);
        BinaryPrimitives.WriteInt64BigEndian(bytes[2..], entry.ProducerId);
        BinaryPrimitives.WriteInt64BigEndian(bytes[10..], entry.FirstOffset);
        BinaryPrimitives.WriteInt64BigEndian(bytes[18..], entry.LastOffset);
        BinaryPrimitives.WriteInt64BigEndian(bytes[26..], entry.LastStableOffset);
    }
}
