using Osprey.Protocol;

namespace Osprey.Metadata;

/// <summary>
/// Where the cluster's metadata lives and changes: the current image, and serialized writes that run a decision on
/// the image and append the records it returns. A single node has its own log (<see cref="MetadataLog"/>); a
/// cluster's quorum replicates the same records through Raft. Handlers and coordinators see only this interface.
/// </summary>
public interface IMetadataQuorum
{
    /// <summary>The current state; a consistent snapshot that never changes under the reader.</summary>
    ClusterImage Image { get; }

    /// <summary>The offset after the last metadata record the image holds.</summary>
    long EndOffset { get; }

    /// <summary>Whether this node is the active controller: the only one whose writes are accepted.</summary>
    bool IsActiveController { get; }

    /// <summary>The node that is the active controller as far as this one knows (null: none now).</summary>
    int? ActiveControllerId { get; }

    /// <summary>The quorum's leader, epoch, high watermark and voters; only the leader knows them (else <see cref="NotControllerException"/>).</summary>
    QuorumStatus Status();

    /// <summary>
    /// Runs <paramref name="decide"/> on the current image and appends the records it returns, as one step: writers
    /// are serialized, so what <paramref name="decide"/> validated against is still the state the records apply to.
    /// Returns once the records are durable, applied and published, with the image that holds them.
    /// </summary>
    Task<(ClusterImage Image, T Result)> UpdateAsync<T>(
        Func<ClusterImage, (IReadOnlyList<IVersionedMessage> Records, T Result)> decide,
        CancellationToken cancellationToken = default);

    /// <summary>Appends <paramref name="records"/> as one batch (all or nothing) and returns the image with them applied.</summary>
    Task<ClusterImage> AppendAsync(IReadOnlyList<IVersionedMessage> records, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds a publisher: from now on it is told of every change, in log order, before the write that made the change
    /// returns.
    /// </summary>
    void AddPublisher(IMetadataPublisher publisher);
}

/// <summary>
/// Acts on metadata changes on this node (opening and deleting logs, giving them new settings, forgetting the
/// offsets of deleted topics). Called once per applied batch, in log order. A publisher must not write metadata
/// itself: the write that is publishing holds the writer's turn.
/// </summary>
public interface IMetadataPublisher
{
    ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken);
}

/// <summary>
/// A metadata write reached a node that is not the active controller (or stopped being it before the write was
/// committed). Kafka's NOT_CONTROLLER: the caller retries with the controller <see cref="LeaderId"/> names, if any.
/// A write that failed this way may still be committed by the next controller.
/// </summary>
public sealed class NotControllerException(int? leaderId, string message) : Exception(message)
{
    /// <summary>The node this one believes leads the quorum now (null: none known).</summary>
    public int? LeaderId { get; } = leaderId;
}

/// <summary>The quorum as its leader sees it (DescribeQuorum): offsets are metadata offsets, end-exclusive.</summary>
public sealed record QuorumStatus(int LeaderId, long LeaderEpoch, long HighWatermark, IReadOnlyList<VoterStatus> Voters);

/// <summary>One voter's progress: -1 where the leader does not know it (yet).</summary>
public sealed record VoterStatus(int Id, long LogEndOffset, long LastFetchTimestamp, long LastCaughtUpTimestamp);
