using System.Diagnostics;
using System.Globalization;

namespace Osprey.Storage.Tests;

/// <summary>
/// A real process appends with durable acknowledgement and is killed with SIGKILL; every acknowledged batch must
/// be in the log when it is reopened.
/// </summary>
public class CrashTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task EveryAcknowledgedAppendSurvivesKillNine()
    {
        using var dir = new TempDirectory();
        const int Partitions = 3;
        var acked = new long[Partitions];
        Array.Fill(acked, -1);
        for (var round = 0; round < 2; round++)
        {
            // Two rounds: the second appends to logs recovered from the first crash.
            await RunAndKillAsync(dir.Path, Partitions, acksWanted: 300, acked);
        }

        await using var manager = new LogManager(dir.Path, new LogManagerOptions(), new ManualTimeProvider());
        Assert.False(manager.WasCleanShutdown);
        manager.LoadAll(_ => new LogConfig { SegmentBytes = 64 * 1024 });
        for (var p = 0; p < Partitions; p++)
        {
            var log = manager.Get("crash", p);
            Assert.NotNull(log);
            Assert.True(log.LogEndOffset > acked[p], $"partition {p}: acknowledged up to {acked[p]} but the log ends at {log.LogEndOffset}");
            var records = Batches.ReadAll(log);
            Assert.Equal(Enumerable.Range(0, (int)log.LogEndOffset).Select(i => (long)i), records.Select(r => r.Offset));
        }
    }

    private static async Task RunAndKillAsync(string dataDir, int partitions, int acksWanted, long[] acked)
    {
        // tests/Osprey.Storage.Tests/bin/<configuration>/net10.0 → tests/Osprey.Storage.CrashHost/bin/<configuration>/net10.0
        var output = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        var configuration = Path.GetFileName(Path.GetDirectoryName(output))!;
        var host = Path.GetFullPath(Path.Combine(output, "..", "..", "..", "..", "Osprey.Storage.CrashHost", "bin", configuration, "net10.0", "Osprey.Storage.CrashHost.dll"));
        Assert.True(File.Exists(host), $"crash host not built at {host}");
        var start = new ProcessStartInfo("dotnet", [host, dataDir, partitions.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var count = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            while (count < acksWanted)
            {
                var line = await process.StandardOutput.ReadLineAsync(timeout.Token)
                    ?? throw new InvalidOperationException("crash host exited: " + await process.StandardError.ReadToEndAsync(timeout.Token));
                var parts = line.Split(' ');
                if (parts[0] == "ack")
                {
                    var p = int.Parse(parts[1], CultureInfo.InvariantCulture);
                    acked[p] = Math.Max(acked[p], long.Parse(parts[2], CultureInfo.InvariantCulture));
                    count++;
                }
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true); // SIGKILL: no flush, no clean shutdown
            await process.WaitForExitAsync(CancellationToken.None);
        }

        // Acks already written to the pipe before the kill count too.
        string? rest;
        while ((rest = await process.StandardOutput.ReadLineAsync(CancellationToken.None)) is not null)
        {
            var parts = rest.Split(' ');
            if (parts.Length == 3 && parts[0] == "ack")
            {
                var p = int.Parse(parts[1], CultureInfo.InvariantCulture);
                acked[p] = Math.Max(acked[p], long.Parse(parts[2], CultureInfo.InvariantCulture));
            }
        }
    }
}
