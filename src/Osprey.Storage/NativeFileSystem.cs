using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Osprey.Storage;

/// <summary>
/// Linux calls .NET does not expose: syncfs (one journal commit for every dirty file of a file system, which is
/// what lets one group-commit round cover many partitions for the price of one fsync) and fsync of a directory
/// (so a newly created segment file's name survives a crash).
/// </summary>
internal static partial class NativeFileSystem
{
    private const int ReadOnly = 0;
    private const int Directory = 0x10000; // O_DIRECTORY

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

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
