using System.Buffers.Binary;

namespace Osprey.Storage;

/// <summary>
/// The sparse offset index of one segment (<c>.index</c>): entries of 8 bytes, big-endian
/// <c>[relative offset int32][file position int32]</c>, in ascending order. An entry names the last offset of a
/// batch and that batch's position, so a lookup gives the position from which a scan finds any greater offset.
/// Entries are kept in memory for binary search and reach the file when the segment rolls or closes.
/// </summary>
internal sealed class OffsetIndex : IndexFile
{
    public const int EntrySize = 8;

    private int[] _relativeOffsets;
    private int[] _positions;
    private int _count;

    private OffsetIndex(string path, long baseOffset, int maxIndexBytes)
        : base(path, baseOffset, maxIndexBytes, EntrySize)
    {
        _relativeOffsets = new int[Math.Min(MaxEntries, 1024)];
        _positions = new int[_relativeOffsets.Length];
    }

    public override int Count => _count;

    public long? LastOffset => _count == 0 ? null : BaseOffset + _relativeOffsets[_count - 1];

    /// <summary>Opens (or creates) the index; with <paramref name="load"/> it reads and checks the existing entries.</summary>
    public static OffsetIndex Open(string path, long baseOffset, int maxIndexBytes, bool load) =>
        Open(new OffsetIndex(path, baseOffset, maxIndexBytes), load);

    protected override void Load(byte[] bytes)
    {
        for (var i = 0; i < bytes.Length; i += EntrySize)
        {
            var relative = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i));
            var position = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i + 4));
            if (relative < 0 || position < 0 || (_count > 0 && (relative <= _relativeOffsets[_count - 1] || position <= _positions[_count - 1])))
            {
                throw new InvalidDataException($"{Path}: entry {i / EntrySize} is out of order.");
            }

            AddInMemory(relative, position);
        }
    }

    public void Append(long offset, int position)
    {
        var relative = checked((int)(offset - BaseOffset));
        if (_count > 0 && relative <= _relativeOffsets[_count - 1])
        {
            return; // never index an offset twice or backwards
        }

        if (IsFull)
        {
            throw new InvalidOperationException($"{Path} is full.");
        }

        AddInMemory(relative, position);
    }

    protected override void EncodeEntry(int slot, Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, _relativeOffsets[slot]);
        BinaryPrimitives.WriteInt32BigEndian(destination[4..], _positions[slot]);
    }

    private void AddInMemory(int relative, int position)
    {
        if (_count == _relativeOffsets.Length)
        {
            Array.Resize(ref _relativeOffsets, Math.Min(MaxEntries, _count * 2));
            Array.Resize(ref _positions, _relativeOffsets.Length);
        }

        _relativeOffsets[_count] = relative;
        _positions[_count] = position;
        _count++;
    }

    /// <summary>The greatest entry with offset ≤ <paramref name="target"/>, or (base offset, 0) when none is.</summary>
    public (long Offset, int Position) Lookup(long target)
    {
        var slot = FindSlot(target);
        return slot < 0 ? (BaseOffset, 0) : (BaseOffset + _relativeOffsets[slot], _positions[slot]);
    }

    private int FindSlot(long target)
    {
        if (target < BaseOffset)
        {
            return -1;
        }

        var relative = target - BaseOffset;
        int lo = 0, hi = _count - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_relativeOffsets[mid] <= relative)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }

    /// <summary>Drops every entry for offsets ≥ <paramref name="offset"/>.</summary>
    public void TruncateTo(long offset)
    {
        var keep = FindSlot(offset - 1) + 1;
        _count = keep;
        TruncateFile(_count);
    }

    /// <summary>Drops every entry at or after <paramref name="position"/> in the log file.</summary>
    public void TruncateToPosition(int position)
    {
        while (_count > 0 && _positions[_count - 1] >= position)
        {
            _count--;
        }

        TruncateFile(_count);
    }

    public override void Reset()
    {
        _count = 0;
        TruncateFile(0);
    }
}
