using System.Buffers;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Quorum;

/// <summary>
/// The Raft state machine of the metadata quorum: each committed entry is one metadata record batch (what one
/// <see cref="IMetadataQuorum.UpdateAsync{T}"/> wrote), applied to the <see cref="ClusterImage"/> in order and then
/// published. The batch carries its metadata offsets: the first must follow the image's last one. A batch the image
/// already holds (a snapshot taken after it, replayed again from the log) is skipped; a gap, a bad CRC or an
/// unreadable record stops the node (<see cref="CorruptMetadataException"/>) rather than guess. Snapshots are the image
/// as records (<see cref="MetadataSnapshot"/>), taken every <c>metadata.log.max.record.bytes.between.snapshots</c>
/// bytes or <c>metadata.log.max.snapshot.interval.ms</c>.
/// </summary>
internal sealed class MetadataStateMachine : SimpleStateMachine
{
    private readonly long _snapshotBytes;
    private readonly long _snapshotIntervalMs;
    private readonly TimeProvider _time;
    private readonly Lock _waitersLock = new();
    private readonly List<(long Offset, TaskCompletionSource Applied)> _waiters = [];
    private volatile ClusterImage _image = ClusterImage.Empty;
    private volatile IMetadataPublisher[] _publishers = [];
    private ClusterImage _snapshotImage = ClusterImage.Empty;
    private long _publishedOffset = -1;
    private long _bytesSinceSnapshot;
    private long _lastSnapshotMs;

    public MetadataStateMachine(DirectoryInfo location, long snapshotBytes, long snapshotIntervalMs, TimeProvider time)
        : base(location)
    {
        _snapshotBytes = snapshotBytes;
        _snapshotIntervalMs = snapshotIntervalMs;
        _time = time;
        _lastSnapshotMs = time.GetUtcNow().ToUnixTimeMilliseconds();
    }

    public ClusterImage Image => _image;

    public void AddPublisher(IMetadataPublisher publisher) => _publishers = [.. _publishers, publisher];

    /// <summary>Completes once the image holds metadata offset <paramref name="offset"/> and publishers have seen it.</summary>
    public Task WhenAppliedAsync(long offset, CancellationToken cancellationToken)
    {
        lock (_waitersLock)
        {
            if (_publishedOffset >= offset)
            {
                return Task.CompletedTask;
            }

            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((offset, waiter));
            return waiter.Task.WaitAsync(cancellationToken);
        }
    }

    protected override async ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        var payload = entry.TryGetPayload(out var sequence) ? sequence.ToArray() : [.. entry.GetPayload().SelectMany(m => m.ToArray())];
        if (payload.Length == 0)
        {
            return false; // a leader's term-start entry carries no metadata
        }

        var before = _image;
        var image = Apply(before, payload, entry.Index);
        if (ReferenceEquals(image, before))
        {
            return false;
        }

        // Readers see the new image first, publishers act on it, and only then does a waiting write return: the
        // contract MetadataLog keeps on a single node.
        _image = image;
        var delta = MetadataDelta.Between(before, image);
        foreach (var publisher in _publishers)
        {
            await publisher.PublishAsync(delta, CancellationToken.None).ConfigureAwait(false);
        }

        lock (_waitersLock)
        {
            _publishedOffset = image.LastOffset;

            foreach (var waiter in _waiters.Where(w => w.Offset <= image.LastOffset).ToList())
            {
                waiter.Applied.TrySetResult();
                _waiters.Remove(waiter);
            }
        }

        _bytesSinceSnapshot += payload.Length;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_bytesSinceSnapshot < _snapshotBytes && now - _lastSnapshotMs < _snapshotIntervalMs)
        {
            return false;
        }

        // The snapshot must be the state as of this entry, whatever is applied while it is written.
        _snapshotImage = image;
        _bytesSinceSnapshot = 0;
        _lastSnapshotMs = now;
        return true;
    }

    /// <summary>The image after one entry's batch; the same image when it already holds the batch.</summary>
    internal static ClusterImage Apply(ClusterImage image, byte[] payload, long index)
    {
        try
        {
            var applied = image;
            using var decompressed = new PooledBufferWriter();
            foreach (var batch in RecordBatch.Enumerate(payload))
            {
                batch.EnsureValidCrc();
                if (batch.Header.LastOffset <= applied.LastOffset)
                {
                    continue;
                }

                if (batch.Header.BaseOffset != applied.LastOffset + 1)
                {
                    throw new CorruptMetadataException(
                        $"Metadata quorum entry {index} starts at metadata offset {batch.Header.BaseOffset}, but the image ends at {applied.LastOffset}: the log has a gap or overlap; the node stops rather than guess.");
                }

                foreach (var record in batch.GetRecords(decompressed))
                {
                    applied = applied.Apply(MetadataRecordCodec.Deserialize(record.Value.ToArray()), record.Offset);
                }
            }

            return applied;
        }
        catch (KafkaProtocolException e)
        {
            throw new CorruptMetadataException($"Metadata quorum entry {index} cannot be read: {e.Message}; the node stops rather than guess.", e);
        }
    }

    protected override ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token) =>
        writer.Invoke(MetadataSnapshot.Write(_snapshotImage), token);

    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        var bytes = await File.ReadAllBytesAsync(snapshotFile.FullName, token).ConfigureAwait(false);
        var image = MetadataSnapshot.Read(bytes, snapshotFile.FullName);
        lock (_waitersLock)
        {
            _image = image;
            _snapshotImage = image;
            _publishedOffset = image.LastOffset;
        }
    }
}
