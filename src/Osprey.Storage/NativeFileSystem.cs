using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Osprey.Storage;

/// <summary>
/// Linux calls .NET does not expose: syncfs (one journal commit for every dirty file of a file system, which is
/// what lets one group-commit round cover many partitions for the price of one fsync), fsync of a directory
/// (so a newly created segment file's name survives a crash) and sync_file_range (to start a file's write-out
/// early, see <see cref="LogWriteback"/>).
/// </summary>
internal static partial class NativeFileSystem
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
