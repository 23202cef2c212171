using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey local-cluster</c>: a cluster of N combined nodes (broker and controller) for development, each its own
/// <c>osprey start</c> process on this machine. Node i listens for clients on base-port + 100·(i−1) and for
/// controllers one port above; all are voters of one metadata quorum. Their output is shown prefixed with the node;
/// Ctrl+C (or SIGTERM) stops them all cleanly, each doing its controlled shutdown.
/// </summary>
internal static partial class LocalClusterCommand
{
    private const int PortStride = 100;

    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "How many nodes (each a broker and a controller voter).", DefaultValueFactory = _ => 3 };
        var basePort = new Option<int>("--base-port") { Description = "Node 1's client port; node i uses base-port + 100*(i-1), and the port above it for its CONTROLLER listener.", DefaultValueFactory = _ => 19092 };
        var dataDir = new Option<string>("--data-dir") { Description = "The directory holding each node's data directory (node-1, node-2, ...).", DefaultValueFactory = _ => "data-cluster" };
        var sets = new Option<string[]>("--set") { Description = "key=value: a broker setting every node gets; repeatable.", AllowMultipleArgumentsPerToken = false };
        var command = new Command("local-cluster", "Run a local cluster of node processes for development (Ctrl+C stops them all).") { nodes, basePort, dataDir, sets };
        command.SetAction(async (result, cancellationToken) =>
        {
            var count = result.GetValue(nodes);
            var first = result.GetValue(basePort);
            if (count is < 1 or > 9)
            {
                Console.Error.WriteLine("osprey: --nodes must be between 1 and 9.");
                return 2;
            }

            if (first < 1 || first + (PortStride * (count - 1)) + 1 > 65535)
            {
                Console.Error.WriteLine($"osprey: --base-port {first} leaves no room for {count} nodes (ports up to {first + (PortStride * (count - 1)) + 1}).");
                return 2;
            }

            var root = Path.GetFullPath(result.GetValue(dataDir)!);
            var voters = string.Join(",", Enumerable.Range(1, count).Select(i => $"{i}@127.0.0.1:{ControllerPort(first, i)}"));
            var children = new List<NodeProcess>();
            try
            {
                for (var id = 1; id <= count; id++)
                {
                    children.Add(NodeProcess.Start(id, StartArguments(id, first, Path.Combine(root, $"node-{id}"), voters, result.GetValue(sets) ?? [])));
                }

                // Every node answers once it has joined the quorum, registered and been unfenced.
                var ready = await Task.WhenAny(Task.WhenAll(children.Select(c => c.Ready)), Task.WhenAny(children.Select(c => c.Exited)), Task.Delay(Timeout.Infinite, cancellationToken)).ConfigureAwait(false);
                if (children.FirstOrDefault(c => c.Exited.IsCompleted) is { } failed)
                {
                    Console.Error.WriteLine($"osprey: node {failed.Id} exited with code {failed.ExitCode} before the cluster was up; stopping the others.");
                    return await StopAsync(children, 1).ConfigureAwait(false);
                }

                if (!cancellationToken.IsCancellationRequested)
                {
                    Console.WriteLine($"Local cluster of {count} node(s) is up; data in {root}");
                    Console.WriteLine($"  bootstrap servers  {string.Join(",", Enumerable.Range(1, count).Select(i => $"127.0.0.1:{ClientPort(first, i)}"))}");
                    Console.WriteLine($"  controllers        {string.Join(",", Enumerable.Range(1, count).Select(i => $"127.0.0.1:{ControllerPort(first, i)}"))}");
                    Console.WriteLine("Press Ctrl+C to stop every node.");
                    await Task.WhenAny(Task.WhenAny(children.Select(c => c.Exited)), Task.Delay(Timeout.Infinite, cancellationToken)).ConfigureAwait(false);
                    if (!cancellationToken.IsCancellationRequested && children.FirstOrDefault(c => c.Exited.IsCompleted) is { } gone)
                    {
                        Console.Error.WriteLine($"osprey: node {gone.Id} exited with code {gone.ExitCode}; stopping the others.");
                        return await StopAsync(children, 1).ConfigureAwait(false);
                    }
                }

                return await StopAsync(children, 0).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return await StopAsync(children, 0).ConfigureAwait(false);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                Console.Error.WriteLine($"osprey: cannot start a node process: {e.Message}");
                return await StopAsync(children, 1).ConfigureAwait(false);
            }
        });
        return command;
    }

    private static int ClientPort(int first, int id) => first + (PortStride * (id - 1));

    private static int ControllerPort(int first, int id) => ClientPort(first, id) + 1;

    /// <summary>What node <paramref name="id"/>'s <c>osprey start</c> is given: Kafka's KRaft settings for a combined node of the quorum.</summary>
    private static List<string> StartArguments(int id, int first, string dataDirectory, string voters, IEnumerable<string> sets)
    {
        var arguments = new List<string>
        {
            "start",
            "--node-id", id.ToString(CultureInfo.InvariantCulture),
            "--data-dir", dataDirectory,
            "--listeners", $"PLAINTEXT://127.0.0.1:{ClientPort(first, id)},CONTROLLER://127.0.0.1:{ControllerPort(first, id)}",
            "--set", "process.roles=broker,controller",
            "--set", "controller.listener.names=CONTROLLER",
            "--set", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "--set", $"controller.quorum.voters={voters}",
        };
        foreach (var set in sets)
        {
            arguments.Add("--set");
            arguments.Add(set);
        }

        return arguments;
    }

    /// <summary>Asks every node still running to stop (SIGTERM: a controlled shutdown), all at once, and waits for them.</summary>
    private static async Task<int> StopAsync(List<NodeProcess> children, int exitCode)
    {
        var running = children.Where(c => !c.Exited.IsCompleted).ToList();
        if (running.Count > 0)
        {
            Console.WriteLine($"osprey: stopping {running.Count} node(s)...");
        }

        foreach (var child in running)
        {
            child.Terminate();
        }

        var failed = false;
        foreach (var child in children)
        {
            var finished = child.WhenOutputRelayedAsync();
            if (await Task.WhenAny(finished, Task.Delay(TimeSpan.FromSeconds(60))).ConfigureAwait(false) != finished)
            {
                Console.Error.WriteLine($"osprey: node {child.Id} did not stop within 60 s; killing it.");
                child.Kill();
                failed = true;
            }
            else if (child.ExitCode != 0)
            {
                failed = true;
            }

            child.Dispose();
        }

        if (running.Count > 0)
        {
            Console.WriteLine(failed ? "osprey: local cluster stopped (not every node cleanly)." : "osprey: local cluster stopped cleanly.");
        }

        return failed ? Math.Max(exitCode, 1) : exitCode;
    }

    /// <summary>One node's process: its output relayed line by line with the node's name in front.</summary>
    private sealed class NodeProcess : IDisposable
    {
        private readonly Process _process;
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private NodeProcess(int id, Process process)
        {
            Id = id;
            _process = process;
        }

        public int Id { get; }

        public Task Ready => _ready.Task;

        public Task Exited => _exited.Task;

        public int ExitCode => _process.HasExited ? _process.ExitCode : -1;

        /// <summary>Completes once the process has exited and all its output has been relayed.</summary>
        public Task WhenOutputRelayedAsync() => _process.WaitForExitAsync();

        public static NodeProcess Start(int id, List<string> arguments)
        {
            // The node runs in a session of its own (setsid), so a terminal's Ctrl+C reaches only this command, which
            // then asks each node to stop exactly once (a second signal would end a node at once).
            var (file, prefix) = SelfCommand();
            var info = new ProcessStartInfo(File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : file)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in (File.Exists("/usr/bin/setsid") ? [file, .. prefix] : prefix).Concat(arguments))
            {
                info.ArgumentList.Add(argument);
            }

            var process = new Process { StartInfo = info, EnableRaisingEvents = true };
            var node = new NodeProcess(id, process);
            process.OutputDataReceived += (_, e) => node.Relay(e.Data, Console.Out);
            process.ErrorDataReceived += (_, e) => node.Relay(e.Data, Console.Error);
            process.Exited += (_, _) => node._exited.TrySetResult();
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return node;
        }

        /// <summary>How to run this same osprey again: the apphost itself, or dotnet with this assembly.</summary>
        private static (string File, string[] Prefix) SelfCommand()
        {
            var host = Environment.ProcessPath ?? "dotnet";
            return Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
                ? (host, [typeof(LocalClusterCommand).Assembly.Location])
                : (host, []);
        }

        private void Relay(string? line, TextWriter to)
        {
            if (line is null)
            {
                return;
            }

            if (line.StartsWith("Press Ctrl+C", StringComparison.Ordinal))
            {
                _ready.TrySetResult();
                return;
            }

            lock (Console.Out)
            {
                to.WriteLine($"[node {Id}] {line}");
            }
        }

        public void Terminate()
        {
            if (!_process.HasExited && SendSignal(_process.Id, SigTerm) != 0)
            {
                Kill();
            }
        }

        public void Kill()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
        }

        public void Dispose() => _process.Dispose();
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
