using Microsoft.Win32.SafeHandles;

namespace Osprey.Storage;

/// <summary>
/// What the offset and time indexes share: a file of fixed-size entries, kept in memory by the subclass, opened
/// either from disk (checked entry by entry, <see cref="InvalidDataException"/> when damaged) or empty (to be rebuilt
/// by a scan). The file is opened only for the moment it is read or written, so an index holds no descriptor (a
/// broker with thousands of segments would otherwise need three per segment). New entries reach the file only when
/// <see cref="WritePending"/> or <see cref="Flush"/> runs (when the segment rolls, is closed or is written by the
/// cleaner), not on every append: each small write-through dirtied two more files per partition, which every
/// group-commit syncfs then had to commit (about a fifth of durable append throughput, docs/benchmarks.md). Nothing
/// is lost by waiting: the active segment is always rescanned, and its indexes rebuilt, after an unclean stop; a
/// segment is trusted only once a later one exists, and rolling writes it.
/// </summary>
internal abstract class IndexFile
{
    private int _written;

    protected IndexFile(string path, long baseOffset, int maxIndexBytes, int entrySize)
    {
        Path = path;
        BaseOffset = baseOffset;
        EntryBytes = entrySize;
        MaxEntries = Math.Max(1, maxIndexBytes / entrySize);
    }

    /// <summary>Where the file is now (it follows the segment's renames).</summary>
    public string Path { get; private set; }

    public long BaseOffset { get; }

    public int MaxEntries { get; }

    public abstract int Count { get; }

    public bool IsFull => Count >= MaxEntries;

    private int EntryBytes { get; }

    /// <summary>Loads the file's entries (<paramref name="load"/>) or empties it.</summary>
    protected static T Open<T>(T index, bool load)
        where T : IndexFile
    {
        if (load)
        {
            index.Load(index.ReadAll());
        }
        else
        {
            index.Reset();
        }

        return index;
    }

    /// <summary>Takes the entries from the file's bytes, checking their order.</summary>
    protected abstract void Load(byte[] bytes);

    /// <summary>Forgets every entry, in memory and on disk.</summary>
    public abstract void Reset();

    private SafeFileHandle OpenFile()
    {
        try
        {
            return File.OpenHandle(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (IOException e) when (NativeFileSystem.IsDescriptorShortage(e))
        {
            throw new DescriptorShortageException(Path, e);
        }
    }

    private byte[] ReadAll()
    {
        using var file = OpenFile();
        var length = RandomAccess.GetLength(file);
        if (length % EntryBytes != 0 || length / EntryBytes > MaxEntries)
        {
            throw new InvalidDataException($"{Path}: size {length} is not a whole number of entries within the limit.");
        }

        var bytes = new byte[length];
        RandomAccess.Read(file, bytes, 0);
        _written = (int)(length / EntryBytes);
        return bytes;
    }

    /// <summary>Encodes the entry in <paramref name="slot"/> into <paramref name="destination"/> (EntryBytes long).</summary>
    protected abstract void EncodeEntry(int slot, Span<byte> destination);

    /// <summary>Writes the entries the file does not have yet (to the page cache; <see cref="Flush"/> also syncs).</summary>
    public void WritePending()
    {
        var count = Count;
        if (_written >= count)
        {
            return;
        }

        using var file = OpenFile();
        Span<byte> chunk = stackalloc byte[4096 / EntryBytes * EntryBytes];
        while (_written < count)
        {
            var entries = Math.Min(count - _written, chunk.Length / EntryBytes);
            for (var i = 0; i < entries; i++)
            {
                EncodeEntry(_written + i, chunk.Slice(i * EntryBytes, EntryBytes));
            }

            RandomAccess.Write(file, chunk[..(entries * EntryBytes)], (long)_written * EntryBytes);
            _written += entries;
        }
    }

    /// <summary>Cuts the file to at most its first <paramref name="entries"/> entries.</summary>
    protected void TruncateFile(int entries)
    {
        _written = Math.Min(_written, entries);
        using var file = OpenFile();
        RandomAccess.SetLength(file, (long)_written * EntryBytes);
    }

    /// <summary>Writes the pending entries and makes the file durable.</summary>
    public void Flush()
    {
        WritePending();
        using var file = OpenFile();
        RandomAccess.FlushToDisk(file);
    }

    /// <summary>Follows the segment's files to a new name.</summary>
    public void MovedTo(string path) => Path = path;

}
