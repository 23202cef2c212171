namespace Osprey.Broker.Network;

/// <summary>
/// Counts the open client connections and notices a mass disconnect: when thousands of connections close, the
/// memory they held is garbage the collector has no reason to look at (an idle broker allocates nothing), so the
/// process would keep its peak size. <see cref="SocketBlockPoolFactory"/> asks on its timer and then collects once.
/// </summary>
public sealed class ConnectionTracker
{
    /// <summary>How many connections must have gone since the last look (and at least half of them) to count as a mass disconnect.</summary>
    public const int MassDisconnect = 1000;

    private int _open;
    private int _peak;

    public int Open => Volatile.Read(ref _open);

    public void Opened()
    {
        var open = Interlocked.Increment(ref _open);
        int peak;
        while (open > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, open, peak) != peak)
        {
        }
    }

    public void Closed() => Interlocked.Decrement(ref _open);

    /// <summary>
    /// True when, since the last call, the open connections fell from their peak by at least
    /// <see cref="MassDisconnect"/> and to half of it or less. Starts the next period at the current count.
    /// </summary>
    public bool TakeMassDisconnect()
    {
        var open = Open;
        var peak = Interlocked.Exchange(ref _peak, open);
        return peak - open >= MassDisconnect && open <= peak / 2;
    }
}
