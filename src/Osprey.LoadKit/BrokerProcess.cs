using System.Globalization;

namespace Osprey.LoadKit;

/// <summary>
/// Finds the local process listening on a TCP port and reads its resident memory (Linux /proc), so that a load tool
/// run on the broker's machine can report the broker's RSS beside its figures. Elsewhere, or when the listener is
/// not visible, it finds nothing.
/// </summary>
public static class BrokerProcess
{
    /// <summary>
    /// The broker's process when the first of <paramref name="bootstrapServers"/> is on this machine (loopback),
    /// or null.
    /// </summary>
    public static int? FromBootstrap(string bootstrapServers)
    {
        var first = bootstrapServers.Split(',')[0].Trim();
        var colon = first.LastIndexOf(':');
        return colon > 0 && first[..colon] is "127.0.0.1" or "localhost" or "[::1]" && int.TryParse(first[(colon + 1)..], out var port)
            ? FindListener(port)
            : null;
    }

    /// <summary>The id of the process listening on <paramref name="port"/>, or null.</summary>
    public static int? FindListener(int port)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var inodes = new HashSet<string>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table))
            {
                continue;
            }

            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // sl local_address rem_address st ... inode: the local port is hex after the colon, 0A is LISTEN.
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length > 9 && fields[3] == "0A" && int.TryParse(fields[1].AsSpan(fields[1].IndexOf(':') + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var local) && local == port)
                {
                    inodes.Add($"socket:[{fields[9]}]");
                }
            }
        }

        if (inodes.Count == 0)
        {
            return null;
        }

        foreach (var process in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(process), out var pid))
            {
                continue;
            }

            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd")))
                {
                    if (new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target))
                    {
                        return pid;
                    }
                }
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
            }
        }

        return null;
    }

    /// <summary>The resident set size of process <paramref name="pid"/> in bytes (VmRSS), or null.</summary>
    public static long? ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return null;
    }
}
