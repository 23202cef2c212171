namespace Osprey.Controller;

/// <summary>
/// The sessions of registered brokers, as the active controller sees them: when each last heard from it. Sessions are
/// not metadata: a controller that takes over starts every broker with a full session.
/// </summary>
internal sealed class BrokerHeartbeatTracker(long sessionTimeoutMs)
{
    private readonly Dictionary<int, long> _lastContactMs = [];
    private long _lastCheckMs = long.MinValue;

    public long SessionTimeoutMs => sessionTimeoutMs;

    public void Touch(int brokerId, long nowMs) => _lastContactMs[brokerId] = nowMs;

    public void Forget(int brokerId) => _lastContactMs.Remove(brokerId);

    /// <summary>Whether the broker has been heard from within the session timeout.</summary>
    public bool HasLiveSession(int brokerId, long nowMs) =>
        _lastContactMs.TryGetValue(brokerId, out var last) && nowMs - last < sessionTimeoutMs;

    /// <summary>
    /// The brokers among <paramref name="candidates"/> whose session ran out. If the controller itself was stalled
    /// for longer than a session (a paused process, a starved thread), it could not have heard anyone in that time:
    /// every session starts afresh instead of being judged by the stall.
    /// </summary>
    public IReadOnlyList<int> Expired(IEnumerable<int> candidates, long nowMs)
    {
        if (_lastCheckMs != long.MinValue && nowMs - _lastCheckMs >= sessionTimeoutMs)
        {
            foreach (var id in _lastContactMs.Keys.ToList())
            {
                _lastContactMs[id] = nowMs;
            }
        }

        _lastCheckMs = nowMs;
        return [.. candidates.Where(id => !HasLiveSession(id, nowMs))];
    }
}
