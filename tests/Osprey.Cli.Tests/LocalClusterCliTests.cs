using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Osprey.Cli.Tests;

/// <summary>
/// <c>osprey local-cluster</c> as a user runs it: three node processes form one cluster, the CLI creates a topic with
/// three replicas and shows its leader, replicas and ISR, and Ctrl+C stops every node cleanly.
/// </summary>
public class LocalClusterCliTests
{
    [Fact(Timeout = 240_000)]
    public async Task ThreeNodesFormAClusterServeAReplicatedTopicAndStopCleanlyOnCtrlC()
    {
        var basePort = FreeBasePort();
        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-local-cluster-" + Guid.NewGuid().ToString("N"));
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "osprey.dll"), "local-cluster", "--nodes", "3", "--base-port", $"{basePort}", "--data-dir", dataDir])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var cluster = Process.Start(start)!;
        var output = new StringBuilder();
        var up = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line)
            {
                return;
            }

            lock (output)
            {
                output.AppendLine(line);
            }

            if (line.TrimStart().StartsWith("bootstrap servers", StringComparison.Ordinal))
            {
                up.TrySetResult(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]);
            }
        };
        cluster.ErrorDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.AppendLine(e.Data);
            }
        };
        cluster.BeginOutputReadLine();
        cluster.BeginErrorReadLine();
        try
        {
            var bootstrap = await up.Task.WaitAsync(TimeSpan.FromSeconds(120), TestContext.Current.CancellationToken);
            Assert.Equal(string.Join(",", new[] { 0, 100, 200 }.Select(o => $"127.0.0.1:{basePort + o}")), bootstrap);

            // Created through any node (it forwards to the active controller), placed on all three.
            var created = await CliRunner.RunAsync(null, "topics", "create", "replicated", "-p", "3", "-r", "3", "-b", $"127.0.0.1:{basePort + 200}");
            Assert.True(created.ExitCode == 0, created.Stderr);

            // Every node knows the topic a moment after the one that created it.
            CliRunner.Result describe;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((describe = await CliRunner.RunAsync(null, "topics", "describe", "replicated", "-o", "json", "-b", bootstrap)).ExitCode != 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }

            Assert.True(describe.ExitCode == 0, describe.Stderr);
            var described = JsonDocument.Parse(describe.Stdout).RootElement;
            var partitions = described.GetProperty("partitions").EnumerateArray().ToList();
            Assert.Equal(3, partitions.Count);
            Assert.All(partitions, p =>
            {
                var replicas = p.GetProperty("replicas").EnumerateArray().Select(r => r.GetInt32()).Order().ToList();
                Assert.Equal([1, 2, 3], replicas);
                Assert.Equal([1, 2, 3], p.GetProperty("isr").EnumerateArray().Select(r => r.GetInt32()).Order());
                Assert.Contains(p.GetProperty("leader").GetInt32(), replicas);
            });

            // The table a user reads: one row per partition with its leader, replicas and ISR.
            var table = await CliRunner.RunAsync(null, "topics", "describe", "replicated", "-b", bootstrap);
            Assert.Contains("replication factor 3", table.Stdout, StringComparison.Ordinal);
            Assert.Contains("ISR", table.Stdout, StringComparison.Ordinal);

            var clusterView = JsonDocument.Parse((await CliRunner.RunAsync(null, "cluster", "describe", "-o", "json", "-b", bootstrap)).Stdout).RootElement;
            var brokers = clusterView.GetProperty("brokers").EnumerateArray().ToList();
            Assert.Equal([1, 2, 3], brokers.Select(b => b.GetProperty("nodeId").GetInt32()).Order());
            Assert.All(brokers, b => Assert.False(b.GetProperty("fenced").GetBoolean()));
            Assert.Single(brokers, b => b.GetProperty("controller").GetBoolean());

            // Ctrl+C: every node stops after its controlled shutdown, and the command exits cleanly.
            Assert.Equal(0, Signal(cluster.Id, "INT"));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            await cluster.WaitForExitAsync(timeout.Token);
            cluster.WaitForExit(); // the output relayed to the end
            string text;
            lock (output)
            {
                text = output.ToString();
            }

            Assert.True(cluster.ExitCode == 0, text);
            Assert.Contains("local cluster stopped cleanly", text, StringComparison.Ordinal);
            foreach (var id in new[] { 1, 2, 3 })
            {
                Assert.Contains($"[node {id}] osprey: stopped cleanly.", text, StringComparison.Ordinal);
            }

            // Nothing is left listening.
            Assert.All(new[] { 0, 1, 100, 101, 200, 201 }, offset => Assert.True(CanBind(basePort + offset), $"port {basePort + offset} is still taken"));
        }
        finally
        {
            if (!cluster.HasExited)
            {
                cluster.Kill(entireProcessTree: true);
            }

            if (Directory.Exists(dataDir))
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }

    private static int Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        return kill.ExitCode;
    }

    /// <summary>A base port whose six ports (client and controller for three nodes) are free, below the ephemeral range.</summary>
    private static int FreeBasePort()
    {
        while (true)
        {
            var port = Random.Shared.Next(20_000, 31_000);
            if (new[] { 0, 1, 100, 101, 200, 201 }.All(offset => CanBind(port + offset)))
            {
                return port;
            }
        }
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
