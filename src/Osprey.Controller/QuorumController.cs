using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Controller;

/// <summary>What a controller decision yields: the records to append (all or none) and the answer to give.</summary>
public readonly record struct ControllerResult<T>(IReadOnlyList<IVersionedMessage> Records, T Response);

/// <summary>
/// The active controller's decisions, free of I/O: each method takes the current image and the time and returns the
/// records to append and the answer. The caller runs one decision at a time, inside the metadata quorum's writer
/// turn, so the image a decision reads is the one its records apply to, and the next offset is where they land.
/// </summary>
/// <param name="uncleanAllowed">Whether a topic allows unclean leader election (unclean.leader.election.enable as in force for it).</param>
public sealed class QuorumController(string clusterId, long sessionTimeoutMs, TimeProvider time, Func<ClusterImage, TopicImage, bool>? uncleanAllowed = null)
{
    private readonly BrokerHeartbeatTracker _sessions = new(sessionTimeoutMs);

    public string ClusterId => clusterId;

    /// <summary>
    /// Called when this controller becomes the active one: every unfenced broker gets a full session from now (its
    /// heartbeats went to another controller until now). <paramref name="restartingBrokerId"/>, the broker that
    /// runs in this very process and is only starting, is left out: a registration of it in the image belongs to
    /// the process's previous run, which no longer exists.
    /// </summary>
    public void Activate(ClusterImage image, int? restartingBrokerId)
    {
        var now = NowMs;
        foreach (var broker in image.Brokers.Values)
        {
            if (!broker.Fenced && broker.Id != restartingBrokerId)
            {
                _sessions.Touch(broker.Id, now);
            }
        }
    }

    /// <summary>
    /// BrokerRegistration: a new registration (fenced until the broker has caught up with the metadata), whose epoch
    /// is the offset of its RegisterBrokerRecord. A broker id whose registration still has a live session under
    /// another incarnation is DUPLICATE_BROKER_REGISTRATION; the same incarnation again is answered with its epoch.
    /// </summary>
    public ControllerResult<BrokerRegistrationResponse> Register(ClusterImage image, BrokerRegistrationRequest request)
    {
        var now = NowMs;
        if (request.ClusterId != clusterId)
        {
            return new([], new BrokerRegistrationResponse
            {
                ErrorCode = (short)ErrorCode.InconsistentClusterId,
            });
        }

        if (image.Brokers.TryGetValue(request.BrokerId, out var existing))
        {
            if (existing.IncarnationId == request.IncarnationId)
            {
                _sessions.Touch(request.BrokerId, now);
                return new([], new BrokerRegistrationResponse { BrokerEpoch = existing.Epoch });
            }

            if (_sessions.HasLiveSession(request.BrokerId, now))
            {
                return new([], new BrokerRegistrationResponse { ErrorCode = (short)ErrorCode.DuplicateBrokerRegistration });
            }
        }

        foreach (var (name, level) in image.FinalizedFeatures)
        {
            var supported = request.Features.FirstOrDefault(f => f.Name == name);
            if (supported is null ? level != 0 : level < supported.MinSupportedVersion || level > supported.MaxSupportedVersion)
            {
                return new([], new BrokerRegistrationResponse { ErrorCode = (short)ErrorCode.UnsupportedVersion });
            }
        }

        var epoch = image.LastOffset + 1;
        var record = new RegisterBrokerRecord
        {
            BrokerId = request.BrokerId,
            IncarnationId = request.IncarnationId,
            BrokerEpoch = epoch,
            Rack = request.Rack,
            Fenced = true,
            InControlledShutdown = false,
        };
        foreach (var listener in request.Listeners)
        {
            record.EndPoints.Add(new RegisterBrokerRecord.BrokerEndpoint { Name = listener.Name, Host = listener.Host, Port = listener.Port, SecurityProtocol = listener.SecurityProtocol });
        }

        foreach (var feature in request.Features)
        {
            record.Features.Add(new RegisterBrokerRecord.BrokerFeature { Name = feature.Name, MinSupportedVersion = feature.MinSupportedVersion, MaxSupportedVersion = feature.MaxSupportedVersion });
        }

        // A new incarnation replaces a registration that was still unfenced: that one's partitions move on first.
        _sessions.Touch(request.BrokerId, now);
        return new(WithPartitionChanges(image, [record], existing is { Fenced: false } ? [request.BrokerId] : [], electLeaderless: false), new BrokerRegistrationResponse { BrokerEpoch = epoch });
    }

    /// <summary>
    /// BrokerHeartbeat: renews the session; unfences a broker that has caught up (its metadata offset reached its
    /// registration) and does not want to stay fenced; fences one that asks to be; marks one that wants to shut
    /// down as in controlled shutdown.
    /// </summary>
    public ControllerResult<BrokerHeartbeatResponse> Heartbeat(ClusterImage image, BrokerHeartbeatRequest request)
    {
        if (!image.Brokers.TryGetValue(request.BrokerId, out var broker))
        {
            return new([], new BrokerHeartbeatResponse { ErrorCode = (short)ErrorCode.BrokerIdNotRegistered });
        }

        if (broker.Epoch != request.BrokerEpoch)
        {
            return new([], new BrokerHeartbeatResponse { ErrorCode = (short)ErrorCode.StaleBrokerEpoch });
        }

        // A broker leaving under control has no session to keep: once it is gone it may register again at once.
        if (request.WantShutDown)
        {
            _sessions.Forget(request.BrokerId);
        }
        else
        {
            _sessions.Touch(request.BrokerId, NowMs);
        }

        var caughtUp = request.CurrentMetadataOffset >= broker.Epoch;
        var fenced = broker.Fenced;
        sbyte fence = -1;
        sbyte shutdown = -1;
        if (request.WantFence && !fenced)
        {
            (fence, fenced) = (1, true);
        }
        else if (fenced && caughtUp && !request.WantFence && !request.WantShutDown)
        {
            (fence, fenced) = (0, false);
        }

        // A broker shutting down is fenced and its leaderships move to other in-sync replicas, in the same step
        // (below): it leads nothing once this answer reaches it, so it may go at once (Kafka's SHUTDOWN_NOW).
        if (request.WantShutDown && !broker.InControlledShutdown)
        {
            shutdown = 1;
            (fence, fenced) = fenced ? (fence, true) : ((sbyte)1, true);
        }

        var response = new BrokerHeartbeatResponse { IsCaughtUp = caughtUp, IsFenced = fenced, ShouldShutDown = request.WantShutDown };
        if (fence < 0 && shutdown < 0)
        {
            return new([], response);
        }

        // Fenced or shutting down: it leaves every ISR and leads nothing (so it may go at once). Unfenced: partitions
        // left leaderless may have it lead.
        IVersionedMessage change = new BrokerRegistrationChangeRecord { BrokerId = broker.Id, BrokerEpoch = broker.Epoch, Fenced = fence, InControlledShutdown = shutdown };
        return new(WithPartitionChanges(image, [change], fence == 1 || shutdown == 1 ? [broker.Id] : [], electLeaderless: fence == 0), response);
    }

    /// <summary>The records that fence every unfenced broker whose session ran out (none most of the time).</summary>
    public IReadOnlyList<IVersionedMessage> FenceExpired(ClusterImage image) => Tick(image, maintain: false, balanceLeaders: false);

    /// <summary>
    /// The controller's periodic step: fencing of brokers whose session ran out (<see cref="FenceExpired"/>) and,
    /// with <paramref name="maintain"/>, what <see cref="Maintain"/> does, planned on one image.
    /// </summary>
    public IReadOnlyList<IVersionedMessage> Tick(ClusterImage image, bool maintain, bool balanceLeaders)
    {
        ArgumentNullException.ThrowIfNull(image);
        var unfenced = image.Brokers.Values.Where(b => !b.Fenced).ToDictionary(b => b.Id);
        var expired = _sessions.Expired(unfenced.Keys, NowMs).ToList();
        if (expired.Count == 0 && !maintain)
        {
            return [];
        }

        var (records, after) = Plan(image, [.. expired.Select(id => (IVersionedMessage)new BrokerRegistrationChangeRecord { BrokerId = id, BrokerEpoch = unfenced[id].Epoch, Fenced = 1 })], expired, electLeaderless: maintain);
        if (balanceLeaders)
        {
            records.AddRange(PartitionChanges.BalanceLeaders(after, CanLead(after)));
        }

        return records;
    }

    /// <summary>AlterPartition: a leader's ISR changes, checked as <see cref="PartitionChanges.AlterPartition"/> says.</summary>
    public ControllerResult<AlterPartitionResponse> AlterPartition(ClusterImage image, AlterPartitionRequest request)
    {
        var (records, response) = PartitionChanges.AlterPartition(image, request);
        return new([.. records], response);
    }

    /// <summary>
    /// <paramref name="records"/> (broker changes) followed by the partition changes they call for: brokers in
    /// <paramref name="removed"/> leave ISRs and leadership, and with <paramref name="electLeaderless"/> partitions
    /// without a leader get one. Each step plans on the image as the records before it left it.
    /// </summary>
    private List<IVersionedMessage> WithPartitionChanges(ClusterImage image, List<IVersionedMessage> records, IReadOnlyList<int> removed, bool electLeaderless) =>
        Plan(image, records, removed, electLeaderless).Records;

    /// <summary><see cref="WithPartitionChanges"/>, with the image the records leave behind.</summary>
    private (List<IVersionedMessage> Records, ClusterImage After) Plan(ClusterImage image, List<IVersionedMessage> records, IReadOnlyList<int> removed, bool electLeaderless)
    {
        var working = image;
        var offset = image.LastOffset + 1;
        foreach (var record in records)
        {
            working = working.Apply(record, offset++);
        }

        void Add(IEnumerable<PartitionChangeRecord> changes)
        {
            foreach (var change in changes)
            {
                working = working.Apply(change, offset++);
                records.Add(change);
            }
        }

        foreach (var id in removed)
        {
            Add(PartitionChanges.RemoveBroker(working, id, CanLead(working), Unclean(working)));
        }

        if (electLeaderless)
        {
            Add(PartitionChanges.ElectLeaderless(working, CanLead(working), Unclean(working)));
        }

        return (records, working);
    }

    /// <summary>
    /// The periodic controller work beyond fencing: partitions left without a leader get one where the topic allows an
    /// unclean election (its setting may have changed since), and with <paramref name="balanceLeaders"/>
    /// (auto.leader.rebalance.enable) leaderships go back to preferred replicas.
    /// </summary>
    public IReadOnlyList<IVersionedMessage> Maintain(ClusterImage image, bool balanceLeaders)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (records, after) = Plan(image, [], [], electLeaderless: true);
        if (balanceLeaders)
        {
            records.AddRange(PartitionChanges.BalanceLeaders(after, CanLead(after)));
        }

        return records;
    }

    private Func<TopicImage, bool>? Unclean(ClusterImage image) => uncleanAllowed is null ? null : topic => uncleanAllowed(image, topic);

    private static Func<int, bool> CanLead(ClusterImage image) =>
        id => image.Brokers.TryGetValue(id, out var broker) && !broker.Fenced && !broker.InControlledShutdown;

    /// <summary>
    /// AllocateProducerIds: the next block of producer ids for a broker's idempotent and transactional producers. Only
    /// a registered broker at its current epoch gets one (else STALE_BROKER_EPOCH, as Kafka answers).
    /// </summary>
    public ControllerResult<AllocateProducerIdsResponse> AllocateProducerIds(ClusterImage image, AllocateProducerIdsRequest request)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(request);
        if (!image.Brokers.TryGetValue(request.BrokerId, out var broker) || broker.Epoch != request.BrokerEpoch)
        {
            return new([], new AllocateProducerIdsResponse { ErrorCode = (short)ErrorCode.StaleBrokerEpoch, ProducerIdStart = -1 });
        }

        var start = image.NextProducerId;
        if (start > long.MaxValue - ProducerIdBlockSize)
        {
            return new([], new AllocateProducerIdsResponse { ErrorCode = (short)ErrorCode.UnknownServerError, ProducerIdStart = -1 });
        }

        return new(
            [new ProducerIdsRecord { BrokerId = broker.Id, BrokerEpoch = broker.Epoch, NextProducerId = start + ProducerIdBlockSize }],
            new AllocateProducerIdsResponse { ProducerIdStart = start, ProducerIdLen = ProducerIdBlockSize });
    }

    /// <summary>How many producer ids a broker gets at a time (Kafka's block size).</summary>
    public const int ProducerIdBlockSize = 1000;

    private long NowMs => time.GetUtcNow().ToUnixTimeMilliseconds();
}
