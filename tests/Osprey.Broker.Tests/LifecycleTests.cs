namespace Osprey.Broker.Tests;

public class LifecycleTests
{
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task ASecondBrokerOnTheSameDataDirectoryRefusesToStart()
    {
        await using var first = await TestBroker.StartAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            TestBroker.StartAsync(o => o with { DataDirectory = first.Server.Options.DataDirectory }));
        Assert.Contains("in use by another Osprey broker", e.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = TestLimits.Timeout)]
    public async Task StoppingWritesTheCleanShutdownMarkerAndReleasesTheLock()
    {
        var broker = await TestBroker.StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        Assert.False(File.Exists(Path.Combine(dataDir, ".kafka_cleanshutdown")));
        await broker.Server.DisposeAsync();
        Assert.True(File.Exists(Path.Combine(dataDir, ".kafka_cleanshutdown")));

        await using var again = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir });
        Assert.True(again.Server.Logs.WasCleanShutdown);
    }

    /// <summary>
    /// Each data directory gets a random cluster id at its first start (Kafka's 22-character base64 UUID, in
    /// meta.properties as Kafka writes it) that it keeps across restarts; a directory that belongs to another node
    /// is refused rather than served under the wrong identity.
    /// </summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task TheDataDirectoryKeepsARandomClusterIdAndBelongsToOneNode()
    {
        var broker = await TestBroker.StartAsync();
        var other = await TestBroker.StartAsync();
        var dataDir = broker.Server.Options.DataDirectory;
        var id = broker.Server.Identity.ClusterId;
        Assert.Matches("^[A-Za-z0-9_-]{22}$", id);
        Assert.NotEqual(id, other.Server.Identity.ClusterId);
        await other.DisposeAsync();
        var meta = File.ReadAllLines(Path.Combine(dataDir, "meta.properties"));
        Assert.Contains($"cluster.id={id}", meta);
        Assert.Contains("node.id=1", meta);
        Assert.Contains("version=1", meta);
        await broker.Server.DisposeAsync();

        await using (var again = await TestBroker.StartAsync(o => o with { DataDirectory = dataDir }))
        {
            Assert.Equal(id, again.Server.Identity.ClusterId);
            await again.Server.DisposeAsync();
            var e = await Assert.ThrowsAsync<Metadata.DataDirectoryMismatchException>(() => TestBroker.StartAsync(o => o with { DataDirectory = dataDir, NodeId = 2 }));
            Assert.Contains("belongs to node 1", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>A port already in use names the Kafka listener, not Kestrel's http:// address.</summary>
    [Fact(Timeout = TestLimits.Timeout)]
    public async Task APortInUseNamesTheListener()
    {
        await using var first = await TestBroker.StartAsync();
        var port = first.Server.Port;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => TestBroker.StartAsync(o => o with { Listener = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port) }));
        Assert.Contains($"PLAINTEXT://127.0.0.1:{port}", e.Message, StringComparison.Ordinal);
        Assert.Contains("already in use", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", e.Message, StringComparison.Ordinal);
    }
}
