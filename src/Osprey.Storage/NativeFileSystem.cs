using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Osprey.Storage;

/// <summary>
/// Linux calls .NET does not expose: syncfs (one journal commit for every dirty file of a file system, which is
/// what lets one group-commit round cover many partitions for the price of one fsync), fsync of a directory
/// (so a newly created segment file's name survives a crash) and sync_file_range (to start a file's write-out
/// early, see <see cref="LogWriteback"/>).
/// </summary>
public static partial class NativeFileSystem
{
    private const int ReadOnly = 0;
    private const int Directory = 0x10000; // O_DIRECTORY
    private const uint SyncFileRangeWrite = 2; // SYNC_FILE_RANGE_WRITE

    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>Flushes everything of the file system that holds <paramref name="handle"/>.</summary>
    public static void SyncFileSystem(SafeFileHandle handle)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (SyncFs((int)handle.DangerousGetHandle()) != 0)
            {
                throw new IOException($"syncfs failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Starts writing the file's dirty pages in the range to the disk and returns without waiting for them
    /// (sync_file_range with SYNC_FILE_RANGE_WRITE). False when the call failed or the handle is closed; nothing
    /// is made durable either way.
    /// </summary>
    public static bool StartWriteback(SafeFileHandle handle, long offset, long length)
    {
        if (!IsSupported)
        {
            return false;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return SyncFileRange((int)handle.DangerousGetHandle(), offset, length, SyncFileRangeWrite) == 0;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Makes the directory's entries (files created or renamed in it) durable. A no-op off Linux.</summary>
    public static void SyncDirectory(string path)
    {
        if (!IsSupported)
        {
            return;
        }

        var fd = Open(path, ReadOnly | Directory);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory {path}: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {path} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>
    /// The process's soft limit on open descriptors (RLIMIT_NOFILE), or <see cref="int.MaxValue"/> when unknown
    /// (off Linux) or unlimited.
    /// </summary>
    public static long OpenFileLimit()
    {
        if (!IsSupported || GetRLimit(RLimitNoFile, out var limit) != 0)
        {
            return int.MaxValue;
        }

        return limit.Current > int.MaxValue ? int.MaxValue : (long)limit.Current;
    }

    /// <summary>
    /// Raises the soft limit on open descriptors to the hard limit, as the JVM does for Kafka at start (a shell's
    /// default soft limit is often 1,024 while the hard one is far higher). Returns the limit now in force.
    /// </summary>
    public static long RaiseOpenFileLimit()
    {
        if (IsSupported && GetRLimit(RLimitNoFile, out var limit) == 0 && limit.Current < limit.Maximum)
        {
            _ = SetRLimit(RLimitNoFile, new RLimit { Current = limit.Maximum, Maximum = limit.Maximum });
        }

        return OpenFileLimit();
    }

    /// <summary>Descriptors the process has open now (entries of /proc/self/fd), or -1 when that cannot be told.</summary>
    public static int OpenFileCount()
    {
        try
        {
            return IsSupported ? System.IO.Directory.GetFileSystemEntries("/proc/self/fd").Length : -1;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>True when <paramref name="exception"/> says the process or system ran out of descriptors (EMFILE, ENFILE).</summary>
    public static bool IsDescriptorShortage(Exception exception) =>
        exception is IOException io && (io.HResult is EMFile or ENFile || io.Message.Contains("Too many open files", StringComparison.Ordinal));

    private const int RLimitNoFile = 7;
    private const int ENFile = 23;
    private const int EMFile = 24;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(int fd, long offset, long length, uint flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
