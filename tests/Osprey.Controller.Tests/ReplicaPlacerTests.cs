namespace Osprey.Controller.Tests;

/// <summary>Placement of new replicas: distinct brokers, leadership spread evenly, racks spread, Kafka's refusal.</summary>
public class ReplicaPlacerTests
{
    [Fact]
    public void MoreReplicasThanBrokersIsRefusedInKafkasWords()
    {
        var (assignment, error) = ReplicaPlacer.Place([new(1, null)], 1, 3, new Random(1));
        Assert.Null(assignment);
        Assert.Equal("Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered.", error);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(42)]
    public void EveryPartitionHasDistinctReplicasAndLeadershipIsSpreadEvenly(int seed)
    {
        PlacementBroker[] brokers = [new(1, null), new(2, null), new(3, null)];
        var (assignment, error) = ReplicaPlacer.Place(brokers, 6, 3, new Random(seed));
        Assert.Null(error);
        Assert.Equal(6, assignment!.Count);
        Assert.All(assignment, replicas => Assert.Equal([1, 2, 3], replicas.Order()));
        Assert.All(assignment.GroupBy(r => r[0]), leaders => Assert.Equal(2, leaders.Count()));

        // Two replicas of three brokers: every broker holds the same number.
        var (pairs, _) = ReplicaPlacer.Place(brokers, 6, 2, new Random(seed));
        Assert.All(pairs!, replicas => Assert.Equal(2, replicas.Distinct().Count()));
        Assert.All(pairs!.SelectMany(r => r).GroupBy(b => b), held => Assert.Equal(4, held.Count()));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(11)]
    public void ReplicasSpreadOverRacksBeforeTheyShareOne(int seed)
    {
        PlacementBroker[] brokers = [new(1, "a"), new(2, "a"), new(3, "b"), new(4, "b"), new(5, "c"), new(6, "c")];
        var (assignment, _) = ReplicaPlacer.Place(brokers, 12, 3, new Random(seed));
        var rackOf = brokers.ToDictionary(b => b.Id, b => b.Rack);
        Assert.All(assignment!, replicas => Assert.Equal(3, replicas.Select(id => rackOf[id]).Distinct().Count()));

        // Four replicas over three racks: all three racks, one of them twice.
        var (four, _) = ReplicaPlacer.Place(brokers, 6, 4, new Random(seed));
        Assert.All(four!, replicas =>
        {
            Assert.Equal(4, replicas.Distinct().Count());
            Assert.Equal(3, replicas.Select(id => rackOf[id]).Distinct().Count());
        });
    }

    [Fact]
    public void TheSameSeedPlacesTheSameWay()
    {
        PlacementBroker[] brokers = [new(1, null), new(2, null), new(3, null), new(4, null)];
        var first = ReplicaPlacer.Place(brokers, 8, 3, new Random(5)).Assignment!;
        var second = ReplicaPlacer.Place(brokers, 8, 3, new Random(5)).Assignment!;
        Assert.Equal(first.Select(r => string.Join(",", r)), second.Select(r => string.Join(",", r)));
    }
}
