namespace Osprey.Broker.Tests;

public class LifecycleTests
{
    [Fact]
    public async Task ASecondBrokerOnTheSameDataDirectoryRefusesToStart()
    {
        await using var first = await TestBroker.StartAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            TestBroker.StartAsync(o => o with { DataDirectory = first.Server.Options.DataDirectory }));
        Assert.Contains("in use by another Osprey broker", e.Message, StringComparison.Ordinal);
    }

    [Fact]
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
}
