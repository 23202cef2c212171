using System.Buffers.Binary;

namespace Osprey.Storage;

/// <summary>
/// The sparse time index of one segment (<c>.timeindex</c>): entries of 12 bytes, big-endian
/// <c>[timestamp int64][relative offset int32]</c>, with strictly increasing timestamps. An entry says: by this
/// offset, the segment has seen a record with this timestamp (the largest so far).
/// </summary>
internal sealed class TimeIndex : IndexFile
{
    public const int EntrySize = 12;

    private readonly List<(long Timestamp, int Relative)> _entries = [];

    private TimeIndex(string path, long baseOffset, int maxIndexBytes)
        : base(path, baseOffset, maxIndexBytes, EntrySize)
    {
    }

    public override int Count => _entries.Count;

    public long LastTimestamp => _entries.Count == 0 ? -1 : _entries[^1].Timestamp;

    public static TimeIndex Open(string path, long baseOffset, int maxIndexBytes, bool load) =>
        Open(new TimeIndex(path, baseOffset, maxIndexBytes), load);

    protected override void Load(byte[] bytes)
    {
        for (var i = 0; i < bytes.Length; i += EntrySize)
        {
            var timestamp = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(i));
            var relative = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i + 8));
            if (relative < 0 || (_entries.Count > 0 && (timestamp <= _entries[^1].Timestamp || relative < _entries[^1].Relative)))
            {
                throw new InvalidDataException($"{Path}: entry {i / EntrySize} is out of order.");
            }

            _entries.Add((timestamp, relative));
        }
    }

    /// <summary>Adds an entry when <paramref name="timestamp"/> is newer than the last one.</summary>
    public void MaybeAppend(long timestamp, long offset)
    {
        if (timestamp <= LastTimestamp || IsFull)
        {
            return;
        }

        var relative = checked((int)(offset - BaseOffset));
        if (_entries.Count > 0 && relative < _entries[^1].Relative)
        {
            return;
        }

        _entries.Add((timestamp, relative));
    }

    protected override void EncodeEntry(int slot, Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64BigEndian(destination, _entries[slot].Timestamp);
        BinaryPrimitives.WriteInt32BigEndian(destination[8..], _entries[slot].Relative);
    }

    /// <summary>
    /// The offset from which to scan for the first record with timestamp ≥ <paramref name="target"/>: the offset
    /// of the greatest entry with timestamp &lt; target (records before it are all older), or the base offset.
    /// </summary>
    public long Lookup(long target)
    {
        int lo = 0, hi = _entries.Count - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_entries[mid].Timestamp < target)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found < 0 ? BaseOffset : BaseOffset + _entries[found].Relative;
    }

    /// <summary>Drops every entry for offsets ≥ <paramref name="offset"/>.</summary>
    public void TruncateTo(long offset)
    {
        while (_entries.Count > 0 && BaseOffset + _entries[^1].Relative >= offset)
        {
            _entries.RemoveAt(_entries.Count - 1);
        }

        TruncateFile(_entries.Count);
    }

    public override void Reset()
    {
        _entries.Clear();
        TruncateFile(0);
    }
}
