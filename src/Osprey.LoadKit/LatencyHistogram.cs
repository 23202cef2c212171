using System.Numerics;

namespace Osprey.LoadKit;

/// <summary>
/// A latency histogram in the manner of HdrHistogram: values (microseconds, or any non-negative integer unit) are
/// counted in log-linear buckets — exact below 128, then 64 buckets per power of two — so every recorded value is
/// known to within 1/64 (1.6 %) whatever its magnitude, in a fixed 30 KB of counters. Recording is lock-free and
/// may come from several threads; percentiles report the highest value of the bucket they fall in (never less
/// than a value that was recorded there), and the exact minimum and maximum are kept.
/// </summary>
public sealed class LatencyHistogram
{
    private const int LinearLimit = 128;
    private const int SubBuckets = 64;
    private const int SubBucketBits = 6;

    private readonly long[] _counts = new long[LinearLimit + ((64 - SubBucketBits) * SubBuckets)];
    private long _total;
    private long _min = long.MaxValue;
    private long _max = long.MinValue;
    private long _sum;

    public long Count => Interlocked.Read(ref _total);

    public long Min => Count == 0 ? 0 : Interlocked.Read(ref _min);

    public long Max => Count == 0 ? 0 : Interlocked.Read(ref _max);

    public double Mean => Count == 0 ? 0 : (double)Interlocked.Read(ref _sum) / Count;

    /// <summary>Counts one value; a negative one counts as 0.</summary>
    public void Record(long value)
    {
        value = Math.Max(0, value);
        Interlocked.Increment(ref _counts[IndexOf(value)]);
        Interlocked.Increment(ref _total);
        Interlocked.Add(ref _sum, value);
        long seen;
        while (value < (seen = Interlocked.Read(ref _min)) && Interlocked.CompareExchange(ref _min, value, seen) != seen)
        {
        }

        while (value > (seen = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, value, seen) != seen)
        {
        }
    }

    /// <summary>The value at or below which <paramref name="percentile"/> % of the recorded values lie (0 when empty).</summary>
    public long Percentile(double percentile)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(percentile, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percentile, 100);
        var total = Count;
        if (total == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100 * total));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Clamp(HighestIn(i), Min, Max);
            }
        }

        return Max;
    }

    /// <summary>Adds another histogram's counts to this one.</summary>
    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            Interlocked.Add(ref _counts[i], Interlocked.Read(ref other._counts[i]));
        }

        if (other.Count == 0)
        {
            return;
        }

        Interlocked.Add(ref _total, other.Count);
        Interlocked.Add(ref _sum, Interlocked.Read(ref other._sum));
        _min = Math.Min(Interlocked.Read(ref _min), other.Min);
        _max = Math.Max(Interlocked.Read(ref _max), other.Max);
    }

    internal static int IndexOf(long value)
    {
        if (value < LinearLimit)
        {
            return (int)value;
        }

        var shift = 63 - BitOperations.LeadingZeroCount((ulong)value) - SubBucketBits; // >= 1
        var sub = (int)(value >> shift) - SubBuckets; // 0..63
        return LinearLimit + ((shift - 1) * SubBuckets) + sub;
    }

    /// <summary>The highest value that falls in bucket <paramref name="index"/>.</summary>
    internal static long HighestIn(int index)
    {
        if (index < LinearLimit)
        {
            return index;
        }

        var shift = ((index - LinearLimit) / SubBuckets) + 1;
        var sub = ((index - LinearLimit) % SubBuckets) + SubBuckets;
        return (long)(((ulong)(sub + 1) << shift) - 1); // at most 2^63 - 1: the last bucket ends at long.MaxValue
    }
}
