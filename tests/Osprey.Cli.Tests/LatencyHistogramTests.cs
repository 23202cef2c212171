using Osprey.LoadKit;

namespace Osprey.Cli.Tests;

/// <summary>The latency histogram of the load tools: exact small values, bounded error, thread safety, merging.</summary>
public class LatencyHistogramTests
{
    [Fact]
    public void SmallValuesAreExact()
    {
        var histogram = new LatencyHistogram();
        for (var v = 1; v <= 100; v++)
        {
            histogram.Record(v);
        }

        Assert.Equal((100L, 1L, 100L, 50.5), (histogram.Count, histogram.Min, histogram.Max, histogram.Mean));
        Assert.Equal((50L, 99L, 100L, 1L), (histogram.Percentile(50), histogram.Percentile(99), histogram.Percentile(100), histogram.Percentile(0)));
    }

    [Fact]
    public void PercentilesAreNeverBelowTheTrueValueAndWithinOneSixtyFourthAbove()
    {
        var random = new Random(42);
        var values = Enumerable.Range(0, 50_000).Select(_ => (long)Math.Exp(random.NextDouble() * 30)).ToArray(); // 1 .. ~10^13
        var histogram = new LatencyHistogram();
        foreach (var value in values)
        {
            histogram.Record(value);
        }

        Array.Sort(values);
        foreach (var p in new[] { 1, 10, 50, 90, 99, 99.9, 99.99, 100 })
        {
            var exact = values[(int)Math.Ceiling(p / 100 * values.Length) - 1];
            var reported = histogram.Percentile(p);
            Assert.InRange(reported, exact, exact + (exact / 64) + 1);
        }
    }

    [Fact]
    public void ExtremeValuesAreCountedAndNegativeOnesAsZero()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(long.MaxValue);
        histogram.Record(-5);
        Assert.Equal((0L, long.MaxValue), (histogram.Min, histogram.Max));
        Assert.Equal(long.MaxValue, histogram.Percentile(100));
        Assert.Equal(0, histogram.Percentile(50));
        Assert.Throws<ArgumentOutOfRangeException>(() => histogram.Percentile(101));
        Assert.Equal(0, new LatencyHistogram().Percentile(99));
    }

    [Fact]
    public void ConcurrentRecordingLosesNothingAndHistogramsMerge()
    {
        var histogram = new LatencyHistogram();
        Parallel.For(0, 4, t =>
        {
            for (var i = 0; i < 100_000; i++)
            {
                histogram.Record((t * 1000) + (i % 1000));
            }
        });
        Assert.Equal((400_000L, 0L, 3999L), (histogram.Count, histogram.Min, histogram.Max));

        var other = new LatencyHistogram();
        other.Record(1_000_000);
        histogram.Add(other);
        Assert.Equal((400_001L, 1_000_000L), (histogram.Count, histogram.Max));
        Assert.InRange(histogram.Percentile(100), 1_000_000, 1_000_000 + (1_000_000 / 64));
    }
}
