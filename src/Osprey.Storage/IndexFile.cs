using Microsoft.Win32.SafeHandles;

namespace Osprey.Storage;

/// <summary>
/// What the offset and time indexes share: a file of fixed-size entries, kept in memory by the subclass and written
/// through, opened either from disk (checked entry by entry, <see cref="InvalidDataException"/> when damaged) or
/// empty (to be rebuilt by a scan).
/// </summary>
internal abstract class IndexFile : IDisposable
{
    private readonly SafeFileHandle _file;

    protected IndexFile(string path, long baseOffset, int maxIndexBytes, int entrySize)
    {
        Path = path;
        BaseOffset = baseOffset;
        EntryBytes = entrySize;
        MaxEntries = Math.Max(1, maxIndexBytes / entrySize);
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
    }

    public string Path { get; }

    public long BaseOffset { get; }

    public int MaxEntries { get; }

    public abstract int Count { get; }

    public bool IsFull => Count >= MaxEntries;

    private int EntryBytes { get; }

    /// <summary>Loads the file's entries (<paramref name="load"/>) or empties it; disposes the index if that fails.</summary>
    protected static T Open<T>(T index, bool load)
        where T : IndexFile
    {
        try
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
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>Takes the entries from the file's bytes, checking their order.</summary>
    protected abstract void Load(byte[] bytes);

    /// <summary>Forgets every entry, in memory and on disk.</summary>
    public abstract void Reset();

    private byte[] ReadAll()
    {
        var length = RandomAccess.GetLength(_file);
        if (length % EntryBytes != 0 || length / EntryBytes > MaxEntries)
        {
            throw new InvalidDataException($"{Path}: size {length} is not a whole number of entries within the limit.");
        }

        var bytes = new byte[length];
        RandomAccess.Read(_file, bytes, 0);
        return bytes;
    }

    protected void WriteEntry(ReadOnlySpan<byte> entry, int slot) => RandomAccess.Write(_file, entry, (long)slot * EntryBytes);

    /// <summary>Cuts the file to its first <paramref name="entries"/> entries.</summary>
    protected void TruncateFile(int entries) => RandomAccess.SetLength(_file, (long)entries * EntryBytes);

    public void Flush() => RandomAccess.FlushToDisk(_file);

    public void Dispose() => _file.Dispose();
}
