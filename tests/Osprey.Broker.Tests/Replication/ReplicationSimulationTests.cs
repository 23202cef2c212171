using System.Globalization;

namespace Osprey.Broker.Tests.Replication;

/// <summary>
/// Many seeded runs of <see cref="ReplicationWorld"/>: no acknowledged record is lost, high watermarks never go back,
/// logs agree below their high watermarks, and after the faults end every replica holds the leader's log.
/// OSPREY_SIM_SEEDS sets the number of seeds (default 1000) for long runs; OSPREY_SIM_SEED replays one.
/// </summary>
public class ReplicationSimulationTests
{
    private const int Events = 600;

    [Fact]
    public void ManySeedsKeepEveryAcknowledgedRecordAndConverge()
    {
        var seeds = Environment.GetEnvironmentVariable("OSPREY_SIM_SEED") is { Length: > 0 } one
            ? [int.Parse(one, CultureInfo.InvariantCulture)]
            : Enumerable.Range(0, int.Parse(Environment.GetEnvironmentVariable("OSPREY_SIM_SEEDS") ?? "1000", CultureInfo.InvariantCulture));
        long acked = 0, elections = 0, runs = 0;
        foreach (var seed in seeds)
        {
            var world = new ReplicationWorld(seed);
            world.Run(Events);
            acked += world.AckedCount;
            elections += world.Elections;
            runs++;
        }

        // The faults really happened and the writes really went through, or the runs prove nothing.
        Assert.True(acked > runs * 5, $"only {acked} records acknowledged in {runs} runs");
        Assert.True(elections > runs, $"only {elections} elections in {runs} runs");
    }
}
