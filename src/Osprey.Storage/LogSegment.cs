using System.Buffers;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage;

/// <summary>How a segment's bytes reach its file: <see cref="RandomAccess.Write(SafeFileHandle, ReadOnlySpan{byte}, long)"/>, or a test's faulty disk.</summary>
public delegate void SegmentWriter(SafeFileHandle file, ReadOnlySpan<byte> bytes, long position);

/// <summary>
/// How a segment's file is made durable: <see cref="RandomAccess.FlushToDisk(SafeFileHandle)"/>, or a test's simulated
/// disk, which then knows exactly what an fsync covered and can lose the rest in a simulated power failure.
/// </summary>
public delegate void SegmentSyncer(SafeFileHandle file, string path);

/// <summary>
/// One segment of a partition log: <c>&lt;base offset, 20 digits&gt;.log</c> holding record batches exactly as on
/// the wire, with its <see cref="OffsetIndex"/> (<c>.index</c>) and <see cref="TimeIndex"/> (<c>.timeindex</c>).
/// Not thread-safe for writers: the partition log serializes appends; reads of bytes below
/// <see cref="Size"/> may run concurrently with appends.
/// </summary>
public sealed class LogSegment : IDisposable
{
    public const string LogSuffix = ".log";
    public const string IndexSuffix = ".index";
    public const string TimeIndexSuffix = ".timeindex";
    public const string TxnIndexSuffix = ".txnindex";
    public const string DeletedSuffix = ".deleted";
    public const string CleanedSuffix = ".cleaned";
    public const string SwapSuffix = ".swap";

    /// <summary>Next to a <c>.log.swap</c> file: the first offset after the segments the swap replaces.</summary>
    public const string CoversSuffix = ".covers";

    private readonly SegmentHandleCache _handles;
    private readonly Lock _fileLock = new();
    private readonly int _indexIntervalBytes;

    // The .log file's handle: always open while the segment is active (pinned); for an older segment, opened when a
    // read needs it and closed by the handle cache when it needs room. Replaced and closed only under _fileLock.
    private SafeFileHandle? _log;
    private bool _pinned = true;
    private bool _disposed;
    private int _recentlyUsed;
    private long _size;

    // Where the batch starting at an offset is: set by the last append and the last read, so that a consumer at
    // the tail (it asks for the offset after what it read last) finds its batch without scanning headers from the
    // last index entry, one read each.
    private ReadCursor? _cursor;
    private int _bytesSinceLastIndexEntry;
    private bool _indexesUnsynced;
    private long _firstBatchTimestamp = long.MinValue;

    // Up to where the file's bytes were handed to the disk (fsynced, or their write-out started by LogWriteback),
    // and whether the segment waits in LogWriteback's queue.
    private long _writebackPosition;
    private int _writebackQueued;

    private LogSegment(string directory, long baseOffset, SafeFileHandle log, OffsetIndex offsetIndex, TimeIndex timeIndex, TransactionIndex txnIndex, int indexIntervalBytes, long created, SegmentHandleCache handles)
    {
        _handles = handles;
        TxnIndex = txnIndex;
        Directory = directory;
        BaseOffset = baseOffset;
        _log = log;
        OffsetIndex = offsetIndex;
        TimeIndex = timeIndex;
        _indexIntervalBytes = indexIntervalBytes;
        NextOffset = baseOffset;
        CreatedMs = created;
    }

    public string Directory { get; }

    public long BaseOffset { get; }

    /// <summary>Bytes in the .log file.</summary>
    public long Size => Interlocked.Read(ref _size);

    /// <summary>The offset after the last record in this segment (the base offset when empty).</summary>
    public long NextOffset { get; private set; }

    /// <summary>The largest record timestamp in this segment, -1 when empty.</summary>
    public long MaxTimestamp { get; private set; } = -1;

    /// <summary>The offset of the batch holding <see cref="MaxTimestamp"/>.</summary>
    public long OffsetOfMaxTimestamp { get; private set; } = -1;

    /// <summary>When the segment was created or its first batch appended (segment.ms counts from here).</summary>
    public long CreatedMs { get; internal set; }

    /// <summary>What the segment's file names carry after the usual ones: "" when live, or e.g. ".cleaned".</summary>
    public string FileSuffix { get; private set; } = "";

    public bool IsEmpty => Size == 0;

    /// <summary>
    /// The max timestamp of the segment's first batch (-1 when empty): max.compaction.lag.ms estimates the age of
    /// a segment's oldest record with it. Read once, then remembered.
    /// </summary>
    public long FirstBatchTimestamp()
    {
        var cached = Interlocked.Read(ref _firstBatchTimestamp);
        if (cached != long.MinValue)
        {
            return cached;
        }

        Span<byte> buffer = stackalloc byte[RecordBatchHeader.Size];
        if (ReadHeader(0, buffer) is not { } header)
        {
            return -1;
        }

        Interlocked.Exchange(ref _firstBatchTimestamp, header.MaxTimestamp);
        return header.MaxTimestamp;
    }

    internal OffsetIndex OffsetIndex { get; }

    internal TimeIndex TimeIndex { get; }

    /// <summary>The aborted transactions whose ABORT marker is in this segment (<c>.txnindex</c>).</summary>
    public TransactionIndex TxnIndex { get; }

    /// <summary>Where the segment sits in its <see cref="SegmentHandleCache"/> while its file is open and it is inactive.</summary>
    internal LinkedListNode<LogSegment>? CacheNode { get; set; }

    /// <summary>Whether the .log file is open now.</summary>
    internal bool IsFileOpen => Volatile.Read(ref _log) is not null;

    /// <summary>
    /// The .log file's handle, held until the lease is disposed: the file is opened if the handle cache closed it, and
    /// stays usable even if the cache closes it meanwhile. <see cref="ObjectDisposedException"/> once the segment is
    /// disposed.
    /// </summary>
    internal SegmentFileLease LeaseFile()
    {
        Volatile.Write(ref _recentlyUsed, 1);
        if (Volatile.Read(ref _log) is { } handle)
        {
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                // Closed by the cache just now: reopened below.
            }

            if (added)
            {
                return new SegmentFileLease(handle);
            }
        }

        return LeaseFileSlowly();
    }

    private SegmentFileLease LeaseFileSlowly()
    {
        SafeFileHandle handle;
        var opened = false;
        lock (_fileLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_log is null)
            {
                _log = OpenFile(LogPath, FileMode.Open);
                opened = !_pinned;
            }

            handle = _log;
            var added = false;
            handle.DangerousAddRef(ref added);
        }

        if (opened)
        {
            _handles.Opened(this);
        }

        return new SegmentFileLease(handle);
    }

    /// <summary>True when the segment was read since the last call (the handle cache's second chance).</summary>
    internal bool TakeRecentUse() => Interlocked.Exchange(ref _recentlyUsed, 0) == 1;

    /// <summary>Closes the .log file if the segment is inactive (the next read opens it again).</summary>
    internal void CloseIdleFile()
    {
        lock (_fileLock)
        {
            if (_pinned || _log is null)
            {
                return;
            }

            _log.Dispose();
            _log = null;
        }
    }

    /// <summary>
    /// Marks the segment active (its file stays open for appends) or inactive (its file may be closed when the
    /// handle cache needs room).
    /// </summary>
    internal void SetActive(bool active)
    {
        bool cache;
        lock (_fileLock)
        {
            if (_disposed || _pinned == active)
            {
                return;
            }

            _pinned = active;
            cache = !active && _log is not null;
        }

        if (cache)
        {
            _handles.Opened(this);
        }
        else if (active)
        {
            _handles.Forget(this);
        }
    }

    /// <summary>Opens a segment file, naming a shortage of descriptors as such.</summary>
    internal static SafeFileHandle OpenFile(string path, FileMode mode)
    {
        try
        {
            return File.OpenHandle(path, mode, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        }
        catch (IOException e) when (NativeFileSystem.IsDescriptorShortage(e))
        {
            throw new DescriptorShortageException(path, e);
        }
    }

    public string LogPath => FilePath(Directory, BaseOffset, LogSuffix) + FileSuffix;

    public static string FileName(long baseOffset, string suffix) =>
        baseOffset.ToString("D20", CultureInfo.InvariantCulture) + suffix;

    public static string FilePath(string directory, long baseOffset, string suffix) =>
        Path.Combine(directory, FileName(baseOffset, suffix));

    /// <summary>Parses "00000000000000000042.log" into 42; false for other names.</summary>
    public static bool TryParseBaseOffset(string fileName, string suffix, out long baseOffset)
    {
        baseOffset = 0;
        return fileName.Length == 20 + suffix.Length
            && fileName.EndsWith(suffix, StringComparison.Ordinal)
            && long.TryParse(fileName.AsSpan(0, 20), NumberStyles.None, CultureInfo.InvariantCulture, out baseOffset);
    }

    /// <summary>
    /// Creates a new, empty segment (any files of the same name are truncated), under the live names or, with
    /// <paramref name="fileSuffix"/>, under names that end with it (the cleaner writes ".cleaned" segments).
    /// </summary>
    public static LogSegment Create(string directory, long baseOffset, LogConfig config, long nowMs, string fileSuffix = "", SegmentHandleCache? handles = null)
    {
        var log = OpenFile(FilePath(directory, baseOffset, LogSuffix) + fileSuffix, FileMode.Create);
        try
        {
            var offsetIndex = OffsetIndex.Open(FilePath(directory, baseOffset, IndexSuffix) + fileSuffix, baseOffset, config.SegmentIndexBytes, load: false);
            var timeIndex = TimeIndex.Open(FilePath(directory, baseOffset, TimeIndexSuffix) + fileSuffix, baseOffset, config.SegmentIndexBytes, load: false);
            var txnPath = FilePath(directory, baseOffset, TxnIndexSuffix) + fileSuffix;
            File.Delete(txnPath); // a new segment has no aborted transactions, whatever an earlier one left
            return new LogSegment(directory, baseOffset, log, offsetIndex, timeIndex, TransactionIndex.Open(txnPath), config.IndexIntervalBytes, nowMs, handles ?? SegmentHandleCache.Default) { FileSuffix = fileSuffix };
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens an existing segment. With <paramref name="trustIndexes"/> the index files are loaded as they are (a
    /// clean segment); otherwise, or when they fail their checks, the segment is scanned by <see cref="Recover"/>.
    /// </summary>
    public static LogSegment Open(string directory, long baseOffset, LogConfig config, bool trustIndexes, long nowMs, long durableBelow, out SegmentRecovery? recovery, SegmentHandleCache? handles = null)
    {
        recovery = null;
        var log = OpenFile(FilePath(directory, baseOffset, LogSuffix), FileMode.Open);
        OffsetIndex? offsetIndex = null;
        TimeIndex? timeIndex = null;
        var recover = !trustIndexes;
        try
        {
            try
            {
                offsetIndex = OffsetIndex.Open(FilePath(directory, baseOffset, IndexSuffix), baseOffset, config.SegmentIndexBytes, load: trustIndexes);
                timeIndex = TimeIndex.Open(FilePath(directory, baseOffset, TimeIndexSuffix), baseOffset, config.SegmentIndexBytes, load: trustIndexes);
            }
            catch (InvalidDataException)
            {
                offsetIndex = OffsetIndex.Open(FilePath(directory, baseOffset, IndexSuffix), baseOffset, config.SegmentIndexBytes, load: false);
                timeIndex = TimeIndex.Open(FilePath(directory, baseOffset, TimeIndexSuffix), baseOffset, config.SegmentIndexBytes, load: false);
                recover = true;
            }

            TransactionIndex txnIndex;
            try
            {
                txnIndex = TransactionIndex.Open(FilePath(directory, baseOffset, TxnIndexSuffix));
            }
            catch (InvalidDataException)
            {
                // Unreadable: rebuilt from the ABORT markers when the producer state is replayed.
                File.Delete(FilePath(directory, baseOffset, TxnIndexSuffix));
                txnIndex = TransactionIndex.Open(FilePath(directory, baseOffset, TxnIndexSuffix));
            }

            var segment = new LogSegment(directory, baseOffset, log, offsetIndex, timeIndex, txnIndex, config.IndexIntervalBytes, nowMs, handles ?? SegmentHandleCache.Default);
            segment._size = RandomAccess.GetLength(log);
            if (recover)
            {
                recovery = segment.Recover(config.MaxMessageBytes, durableBelow, contiguous: !config.Compact);
                segment.TxnIndex.TruncateTo(segment.NextOffset);
                segment.OffsetIndex.WritePending();
                segment.TimeIndex.WritePending();
            }
            else
            {
                try
                {
                    segment.LoadTail();
                }
                catch (InvalidDataException)
                {
                    // The tail does not read as the indexes promised: scan the segment instead of trusting it.
                    recovery = segment.Recover(config.MaxMessageBytes, durableBelow, contiguous: !config.Compact);
                    segment.TxnIndex.TruncateTo(segment.NextOffset);
                    segment.OffsetIndex.WritePending();
                    segment.TimeIndex.WritePending();
                }
            }

            return segment;
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    /// <summary>For a clean segment: finds the next offset and max timestamp by scanning from the last index entry.</summary>
    private void LoadTail()
    {
        var (_, position) = OffsetIndex.Lookup(long.MaxValue);
        MaxTimestamp = TimeIndex.LastTimestamp;
        OffsetOfMaxTimestamp = TimeIndex.Count == 0 ? -1 : TimeIndex.Lookup(long.MaxValue);
        long pos = position;
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        while (pos < _size)
        {
            var batch = ReadHeader(pos, header) ?? throw new InvalidDataException($"{LogPath}: unreadable batch at {pos} in a clean segment.");
            NextOffset = batch.NextOffset;
            if (batch.MaxTimestamp > MaxTimestamp)
            {
                MaxTimestamp = batch.MaxTimestamp;
                OffsetOfMaxTimestamp = batch.BaseOffset;
            }

            pos += batch.TotalSize;
        }
    }

    /// <summary>
    /// Scans every batch, checking its framing and CRC, rebuilds both indexes and truncates the file at the first
    /// batch that is torn or corrupt past <paramref name="durableBelow"/> (the recovery point: what was fsynced). A
    /// batch below it that fails its checks was on disk whole, so it is damage, not a torn write: it is kept where
    /// it is (and reported) when its framing lets the scan step over it; when not, nothing is cut and the open fails
    /// with <see cref="CorruptLogException"/>, so damage never turns into deleting the intact data after it. With
    /// <paramref name="contiguous"/> (a log that is not compacted), a batch must start where the previous one ended.
    /// </summary>
    public SegmentRecovery Recover(int maxMessageBytes, long durableBelow = 0, bool contiguous = false)
    {
        var corrupt = new List<(long Position, int Length, long AfterOffset)>();
        OffsetIndex.Reset();
        TimeIndex.Reset();
        Interlocked.Exchange(ref _firstBatchTimestamp, long.MinValue);
        NextOffset = BaseOffset;
        MaxTimestamp = -1;
        OffsetOfMaxTimestamp = -1;
        _bytesSinceLastIndexEntry = 0;
        using var file = LeaseFile();
        var fileSize = RandomAccess.GetLength(file.Handle);
        long position = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1 << 20, maxMessageBytes + RecordBatchHeader.LogOverhead));
        try
        {
            var bufferStart = 0L;
            var bufferLength = 0;
            while (position < fileSize)
            {
                // Keep [position, position + needed) in the buffer, refilling as the scan moves on.
                var offsetInBuffer = (int)(position - bufferStart);
                if (offsetInBuffer + RecordBatchHeader.LogOverhead > bufferLength)
                {
                    bufferStart = position;
                    bufferLength = RandomAccess.Read(file.Handle, buffer, position);
                    offsetInBuffer = 0;
                }

                if (bufferLength - offsetInBuffer < RecordBatchHeader.Size)
                {
                    ThrowIfDurable("its header is cut short");
                    break; // torn header
                }

                var batchLength = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(offsetInBuffer + 8));
                var total = (long)batchLength + RecordBatchHeader.LogOverhead;
                if (batchLength < RecordBatchHeader.MinBatchLength || total > maxMessageBytes + (long)RecordBatchHeader.LogOverhead || position + total > fileSize)
                {
                    ThrowIfDurable($"its length field ({batchLength}) cannot be right");
                    break; // corrupt length or torn batch
                }

                if (offsetInBuffer + total > bufferLength)
                {
                    bufferStart = position;
                    bufferLength = RandomAccess.Read(file.Handle, buffer, position);
                    offsetInBuffer = 0;
                    if (total > bufferLength)
                    {
                        ThrowIfDurable("it cannot be read whole");
                        break;
                    }
                }

                RecordBatchHeader header = default;
                var valid = false;
                try
                {
                    var batch = RecordBatch.Parse(buffer.AsSpan(offsetInBuffer, (int)total));
                    header = batch.Header;
                    // The base offset is outside the CRC: a torn write can leave a batch whose CRC holds but whose
                    // offset is garbage. Only compaction leaves gaps between batches, so elsewhere each batch must
                    // start where the one before it ended.
                    valid = batch.VerifyCrc() && header.LastOffsetDelta >= 0 && (contiguous ? header.BaseOffset == NextOffset : header.BaseOffset >= NextOffset);
                }
                catch (KafkaProtocolException)
                {
                }

                if (!valid)
                {
                    if (NextOffset >= durableBelow)
                    {
                        break; // torn or half-written past the last fsync: cut here
                    }

                    // Damage below the recovery point: step over the batch, keeping it, and take its offsets from
                    // its header where they still make sense, so that no offset is handed out twice.
                    corrupt.Add((position, (int)total, NextOffset));
                    try
                    {
                        var fixedPart = RecordBatchHeader.ParseFixedPart(buffer.AsSpan(offsetInBuffer, RecordBatchHeader.Size));
                        if (fixedPart.BaseOffset >= NextOffset && fixedPart.LastOffsetDelta >= 0 && fixedPart.NextOffset <= durableBelow)
                        {
                            NextOffset = fixedPart.NextOffset;
                        }
                    }
                    catch (KafkaProtocolException)
                    {
                    }

                    position += total;
                    continue;
                }

                OnBatchAppended(header, (int)position);
                position += total;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        void ThrowIfDurable(string why)
        {
            if (NextOffset < durableBelow)
            {
                throw new CorruptLogException(
                    $"{LogPath}: the batch at position {position} (after offset {NextOffset}) is damaged below the recovery point {durableBelow}: {why}. " +
                    "That data was fsynced, so this is damage on disk, not a write torn by a crash; the log is left untouched rather than cut there (which would delete everything after it).");
            }
        }

        var truncated = fileSize - position;
        if (truncated > 0)
        {
            RandomAccess.SetLength(file.Handle, position);
        }

        Interlocked.Exchange(ref _size, position);
        Volatile.Write(ref _cursor, null);
        return new SegmentRecovery(truncated, NextOffset, corrupt);
    }

    /// <summary>Updates indexes and counters for a batch written at <paramref name="position"/>.</summary>
    private void OnBatchAppended(in RecordBatchHeader batch, int position)
    {
        if (batch.MaxTimestamp > MaxTimestamp)
        {
            MaxTimestamp = batch.MaxTimestamp;
            OffsetOfMaxTimestamp = batch.BaseOffset;
        }

        // A full index stays sparse rather than failing the append: lookups just scan further.
        if (_bytesSinceLastIndexEntry > _indexIntervalBytes && !OffsetIndex.IsFull)
        {
            OffsetIndex.Append(batch.LastOffset, position);
            TimeIndex.MaybeAppend(MaxTimestamp, OffsetOfMaxTimestamp);
            _bytesSinceLastIndexEntry = 0;
        }

        _bytesSinceLastIndexEntry += batch.TotalSize;
        NextOffset = batch.NextOffset;
        Volatile.Write(ref _cursor, new ReadCursor(batch.BaseOffset, position));
    }

    /// <summary>
    /// Appends batches whose offsets are already assigned (each starting at <see cref="NextOffset"/> or later).
    /// </summary>
    public void Append(ReadOnlySpan<byte> batches, long nowMs, SegmentWriter? writer = null)
    {
        if (IsEmpty)
        {
            CreatedMs = nowMs;
        }

        var position = Size;
        using (var file = LeaseFile())
        {
            if (writer is null)
            {
                RandomAccess.Write(file.Handle, batches, position);
            }
            else
            {
                writer(file.Handle, batches, position);
            }
        }

        var offset = 0;
        while (offset < batches.Length)
        {
            var header = RecordBatchHeader.Parse(batches[offset..]);
            OnBatchAppended(header, checked((int)(position + offset)));
            offset += header.TotalSize;
        }

        Interlocked.Exchange(ref _size, position + batches.Length);
    }

    /// <summary>Reads a batch header at <paramref name="position"/>; null at or past the end, or if it cannot be parsed.</summary>
    internal RecordBatchHeader? ReadHeader(long position, Span<byte> buffer)
    {
        if (position + RecordBatchHeader.Size > Size)
        {
            return null;
        }

        int read;
        using (var file = LeaseFile())
        {
            read = RandomAccess.Read(file.Handle, buffer[..RecordBatchHeader.Size], position);
        }

        if (read < RecordBatchHeader.Size)
        {
            return null;
        }

        try
        {
            // Only the fixed part is checked here; the batch length is checked against the segment size.
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer[8..]);
            return position + RecordBatchHeader.LogOverhead + length > Size ? null : RecordBatchHeader.ParseFixedPart(buffer);
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }

    /// <summary>
    /// Position of the first batch whose last offset is ≥ <paramref name="offset"/>, or -1 when the segment has
    /// none (before <paramref name="maxPosition"/>).
    /// </summary>
    public long FindBatchPosition(long offset, long maxPosition, out RecordBatchHeader found)
    {
        var (_, position) = OffsetIndex.Lookup(offset);
        long pos = position;
        if (Volatile.Read(ref _cursor) is { } cursor && cursor.Offset <= offset && cursor.Position > pos && cursor.Position < maxPosition)
        {
            pos = cursor.Position; // a batch starts there, and the one holding offset is not before it
        }

        Span<byte> buffer = stackalloc byte[RecordBatchHeader.Size];
        while (pos < maxPosition)
        {
            var header = ReadHeader(pos, buffer);
            if (header is null)
            {
                break;
            }

            if (header.Value.LastOffset >= offset)
            {
                found = header.Value;
                return pos;
            }

            pos += header.Value.TotalSize;
        }

        found = default;
        return -1;
    }

    /// <summary>Calls <paramref name="visit"/> with the header of every batch from the one holding <paramref name="fromOffset"/> on.</summary>
    public void ForEachBatchHeader(long fromOffset, Action<RecordBatchHeader> visit)
    {
        var size = Size;
        var position = FindBatchPosition(fromOffset, size, out _);
        Span<byte> buffer = stackalloc byte[RecordBatchHeader.Size];
        while (position >= 0 && position < size && ReadHeader(position, buffer) is { } header)
        {
            visit(header);
            position += header.TotalSize;
        }
    }

    /// <summary>
    /// The whole batches starting with the one that holds <paramref name="startOffset"/>, up to
    /// <paramref name="maxBytes"/> (the first batch always, when <paramref name="minOneBatch"/>), not past
    /// <paramref name="maxPosition"/> and not including batches at or past <paramref name="maxOffset"/>.
    /// </summary>
    public FileRegion? Read(long startOffset, int maxBytes, long maxPosition, long maxOffset, bool minOneBatch)
    {
        maxPosition = Math.Min(maxPosition, Size);
        var start = FindBatchPosition(startOffset, maxPosition, out var first);
        if (start < 0 || first.BaseOffset >= maxOffset)
        {
            return null;
        }

        var end = start;
        Span<byte> buffer = stackalloc byte[RecordBatchHeader.Size];
        var header = first;
        while (true)
        {
            var batchEnd = end + header.TotalSize;
            if (batchEnd > maxPosition || header.LastOffset >= maxOffset)
            {
                break;
            }

            if (batchEnd - start > maxBytes && !(minOneBatch && end == start))
            {
                break;
            }

            end = batchEnd;
            Volatile.Write(ref _cursor, new ReadCursor(header.NextOffset, end));
            var next = ReadHeader(end, buffer);
            if (next is null)
            {
                break;
            }

            header = next.Value;
        }

        if (end == start)
        {
            return null;
        }

        return new FileRegion(this, start, (int)(end - start));
    }

    /// <summary>Fills <paramref name="destination"/> with the bytes at <paramref name="position"/>.</summary>
    public void ReadBytes(long position, Span<byte> destination)
    {
        var total = 0;
        using var file = LeaseFile();
        while (total < destination.Length)
        {
            var read = RandomAccess.Read(file.Handle, destination[total..], position + total);
            if (read == 0)
            {
                throw new KafkaStorageException(ErrorCode.KafkaStorageError, $"{LogPath}: unexpected end of file at {position + total}.");
            }

            total += read;
        }
    }

    /// <summary>
    /// Cuts the file back to <paramref name="size"/> bytes, the segment's length before a write that failed part-way:
    /// nothing the segment counts was written past it, so only the stray bytes go.
    /// </summary>
    public void TruncateToSize(long size)
    {
        if (size != Size)
        {
            throw new InvalidOperationException($"{LogPath}: can only cut back to the segment's own end ({Size}), not {size}.");
        }

        using var file = LeaseFile();
        if (RandomAccess.GetLength(file.Handle) != size)
        {
            RandomAccess.SetLength(file.Handle, size);
        }
    }

    /// <summary>Removes every batch with offsets ≥ <paramref name="offset"/> (the batch holding it too).</summary>
    public void TruncateTo(long offset)
    {
        var position = FindBatchPosition(offset, Size, out var header);
        if (position < 0)
        {
            return;
        }

        if (header.BaseOffset < offset)
        {
            // The batch straddles the cut: batches are atomic, so keep it whole.
            position += header.TotalSize;
        }

        using (var file = LeaseFile())
        {
            RandomAccess.SetLength(file.Handle, position);
        }

        Interlocked.Exchange(ref _size, position);
        Interlocked.Exchange(ref _writebackPosition, Math.Min(Interlocked.Read(ref _writebackPosition), position));
        Volatile.Write(ref _cursor, null);
        OffsetIndex.TruncateToPosition((int)position);
        TimeIndex.TruncateTo(offset);
        TxnIndex.TruncateTo(offset);
        Volatile.Write(ref _indexesUnsynced, false); // the last segment left: active again, rescanned after a crash
        // Recompute the tail state from what is left.
        Interlocked.Exchange(ref _firstBatchTimestamp, long.MinValue);
        NextOffset = BaseOffset;
        MaxTimestamp = -1;
        OffsetOfMaxTimestamp = -1;
        _bytesSinceLastIndexEntry = 0;
        LoadTail();
    }

    /// <summary>
    /// Called when the segment stops being the active one: records its final max timestamp and writes its index
    /// entries to their files. The next <see cref="Flush"/> syncs them, before the recovery point can pass the
    /// segment's end (from then on an unclean open trusts them).
    /// </summary>
    public void OnBecomeInactive()
    {
        if (MaxTimestamp >= 0)
        {
            TimeIndex.MaybeAppend(MaxTimestamp, OffsetOfMaxTimestamp);
        }

        OffsetIndex.WritePending();
        TimeIndex.WritePending();
        Volatile.Write(ref _indexesUnsynced, true);
        SetActive(false);
    }

    /// <summary>Whether the segment rolled and its index files still have to be synced.</summary>
    public bool HasUnsyncedIndexes => Volatile.Read(ref _indexesUnsynced);

    public void Flush(SegmentSyncer? syncer = null)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var size = Size;
        using (var file = LeaseFile())
        {
            if (syncer is null)
            {
                RandomAccess.FlushToDisk(file.Handle);
            }
            else
            {
                syncer(file.Handle, LogPath);
            }
        }

        AdvanceWriteback(size);
        StorageMetrics.Fsync(started, System.Diagnostics.Stopwatch.GetTimestamp());
        TxnIndex.Flush(); // an ABORT marker on disk has its index entry on disk
        if (HasUnsyncedIndexes)
        {
            OffsetIndex.Flush();
            TimeIndex.Flush();
            Volatile.Write(ref _indexesUnsynced, false);
        }
    }

    /// <summary>Bytes appended that were neither fsynced nor handed to the disk by <see cref="StartWriteback"/>.</summary>
    internal long PendingWritebackBytes => Size - Interlocked.Read(ref _writebackPosition);

    /// <summary>True for the one caller that may put the segment into LogWriteback's queue.</summary>
    internal bool TryQueueWriteback() => Interlocked.CompareExchange(ref _writebackQueued, 1, 0) == 0;

    internal void WritebackDequeued() => Volatile.Write(ref _writebackQueued, 0);

    /// <summary>
    /// Starts the write-out of the bytes appended since the last flush or write-out, without waiting for it; returns
    /// how many bytes that was. Only a hint to the disk: failures are left for the next fsync to report.
    /// </summary>
    internal long StartWriteback()
    {
        WritebackDequeued(); // appends from here on may queue the segment again
        var end = Size;
        var from = Interlocked.Read(ref _writebackPosition);
        if (end <= from || !IsFileOpen)
        {
            return 0; // an inactive segment whose file the cache closed: its pages wait for the next fsync
        }

        bool started;
        try
        {
            using var file = LeaseFile();
            started = NativeFileSystem.StartWriteback(file.Handle, from, end - from);
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }

        if (!started)
        {
            return 0;
        }

        AdvanceWriteback(end);
        return end - from;
    }

    private void AdvanceWriteback(long position)
    {
        long current;
        do
        {
            current = Interlocked.Read(ref _writebackPosition);
        }
        while (current < position && Interlocked.CompareExchange(ref _writebackPosition, position, current) != current);
    }

    public void FlushIndexes()
    {
        OffsetIndex.Flush();
        TimeIndex.Flush();
        TxnIndex.Flush();
    }

    /// <summary>
    /// Renames the segment's files from their current suffix to <paramref name="suffix"/> ("" for the live names,
    /// e.g. .deleted or .swap otherwise), keeping them open for current readers. The .log file is what makes a
    /// segment exist under a name, so it moves first when leaving the live names for .deleted and last otherwise:
    /// a crash in between leaves only index files to tidy up, never a log without its indexes.
    /// </summary>
    public void RenameTo(string suffix)
    {
        string[] kinds = suffix == DeletedSuffix ? [LogSuffix, IndexSuffix, TimeIndexSuffix, TxnIndexSuffix] : [IndexSuffix, TimeIndexSuffix, TxnIndexSuffix, LogSuffix];
        // Under the file lock: a read that reopens the .log file meanwhile must find it under the name it looks for.
        lock (_fileLock)
        {
            TxnIndex.MovedTo(FilePath(Directory, BaseOffset, TxnIndexSuffix) + suffix);
            OffsetIndex.MovedTo(FilePath(Directory, BaseOffset, IndexSuffix) + suffix);
            TimeIndex.MovedTo(FilePath(Directory, BaseOffset, TimeIndexSuffix) + suffix);
            foreach (var kind in kinds)
            {
                var path = FilePath(Directory, BaseOffset, kind);
                if (File.Exists(path + FileSuffix))
                {
                    File.Move(path + FileSuffix, path + suffix, overwrite: true);
                }
            }

            FileSuffix = suffix;
        }
    }

    /// <summary>Deletes this segment's files with the given suffix appended ("" for the live names).</summary>
    public void DeleteFiles(string suffix)
    {
        foreach (var kind in new[] { LogSuffix, IndexSuffix, TimeIndexSuffix, TxnIndexSuffix })
        {
            File.Delete(FilePath(Directory, BaseOffset, kind) + suffix);
        }
    }

    public void Dispose()
    {
        lock (_fileLock)
        {
            _disposed = true;
            _log?.Dispose();
            _log = null;
        }

        _handles.Forget(this);
    }

    /// <summary>A batch that starts with <paramref name="Offset"/> at <paramref name="Position"/>.</summary>
    private sealed record ReadCursor(long Offset, long Position);
}

/// <summary>
/// Whole record batches in a segment file, ready to be sent without copying (or copied with
/// <see cref="CopyTo"/> when the bytes are needed).
/// </summary>
public readonly record struct FileRegion(LogSegment Segment, long Position, int Length)
{
    public void CopyTo(Span<byte> destination) => Segment.ReadBytes(Position, destination[..Length]);

    public byte[] ToArray()
    {
        var bytes = new byte[Length];
        CopyTo(bytes);
        return bytes;
    }
}

/// <summary>A segment file's handle, kept open until disposed (see <see cref="LogSegment.LeaseFile"/>).</summary>
internal readonly struct SegmentFileLease(SafeFileHandle handle) : IDisposable
{
    public SafeFileHandle Handle { get; } = handle;

    public void Dispose() => Handle.DangerousRelease();
}
