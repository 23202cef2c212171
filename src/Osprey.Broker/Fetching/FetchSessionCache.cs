using System.Security.Cryptography;

namespace Osprey.Broker.Fetching;

/// <summary>A partition in a fetch: by topic id (Fetch v13+) or by name (older versions; the id is empty).</summary>
public readonly record struct FetchKey(Guid TopicId, string Topic, int Partition);

/// <summary>
/// One partition to read: where from, how much, the leader epoch the fetcher believes current (-1: unchecked) and the
/// epoch of the last batch it fetched (-1: unknown; followers send it so the leader can tell a divergence).
/// </summary>
public readonly record struct FetchTarget(FetchKey Key, long Offset, int MaxBytes, int CurrentLeaderEpoch, int LastFetchedEpoch);

/// <summary>
/// A partition a session follows: where the client reads from and with what limit, and what the broker last told
/// it (so an incremental response can leave out partitions with nothing new).
/// </summary>
public sealed class SessionPartition(long fetchOffset, int maxBytes)
{
    public long FetchOffset { get; set; } = fetchOffset;

    public int MaxBytes { get; set; } = maxBytes;

    public int CurrentLeaderEpoch { get; set; } = -1;

    public int LastFetchedEpoch { get; set; } = -1;

    public long SentHighWatermark { get; set; } = -1;

    public long SentLogStartOffset { get; set; } = -1;

    public long SentLastStableOffset { get; set; } = -1;
}

/// <summary>An incremental fetch session (KIP-227): its partitions, in the order they were added, and its epoch.</summary>
public sealed class FetchSession(int id, bool usesTopicIds, long nowMs)
{
    public int Id { get; } = id;

    /// <summary>Whether the session names topics by id (it was created at Fetch v13+).</summary>
    public bool UsesTopicIds { get; } = usesTopicIds;

    /// <summary>The epoch the next incremental request must carry.</summary>
    public int NextEpoch { get; set; } = 1;

    public long LastUsedMs { get; set; } = nowMs;

    public OrderedDictionary<FetchKey, SessionPartition> Partitions { get; } = [];

    /// <summary>Serializes the requests of one session (a client sends them one at a time anyway).</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);
}

/// <summary>
/// The broker's fetch sessions, at most max.incremental.fetch.session.cache.slots of them. When the cache is full a
/// new session may take the place of the least recently used one if that one has been idle for
/// <see cref="EvictionMs"/> or follows fewer partitions; otherwise the client is told "no session" (id 0) and keeps
/// doing full fetches, which always work.
/// </summary>
public sealed class FetchSessionCache(int maxSessions, TimeProvider time)
{
    public const long EvictionMs = 120_000;

    private readonly Dictionary<int, FetchSession> _sessions = [];
    private readonly Lock _lock = new();

    public long NowMs => time.GetUtcNow().ToUnixTimeMilliseconds();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _sessions.Count;
            }
        }
    }

    public FetchSession? Get(int id)
    {
        lock (_lock)
        {
            return _sessions.GetValueOrDefault(id);
        }
    }

    public void Remove(int id)
    {
        lock (_lock)
        {
            _sessions.Remove(id);
        }
    }

    /// <summary>A new session for <paramref name="partitionCount"/> partitions, or null when there is no room.</summary>
    public FetchSession? TryCreate(bool usesTopicIds, int partitionCount)
    {
        var now = NowMs;
        lock (_lock)
        {
            if (maxSessions <= 0)
            {
                return null;
            }

            if (_sessions.Count >= maxSessions)
            {
                var victim = _sessions.Values.MinBy(s => s.LastUsedMs)!;
                if (now - victim.LastUsedMs < EvictionMs && victim.Partitions.Count >= partitionCount)
                {
                    return null;
                }

                _sessions.Remove(victim.Id);
            }

            int id;
            do
            {
                id = RandomNumberGenerator.GetInt32(1, int.MaxValue);
            }
            while (_sessions.ContainsKey(id));

            var session = new FetchSession(id, usesTopicIds, now);
            _sessions[id] = session;
            return session;
        }
    }
}
