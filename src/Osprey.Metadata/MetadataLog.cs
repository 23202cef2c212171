using Osprey.Protocol;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Metadata;

/// <summary>
/// The cluster metadata log: a partition log named <c>__cluster_metadata-0</c> in the data directory whose records
/// are metadata records (<see cref="MetadataRecordCodec"/>). Replayed at start into a <see cref="ClusterImage"/>;
/// every change is appended durably (fsync) before the image moves on, then published. This is the quorum of a
/// single node: the same records are what a Raft quorum carries once there is more than one.
/// </summary>
public sealed class MetadataLog : IMetadataQuorum
{
    public const string Topic = "__cluster_metadata";

    private readonly LogManager _logs;
    private readonly PartitionLog _log;
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly TimeProvider _time;
    private volatile ClusterImage _image;
    private readonly Lock _publishersLock = new();
    private volatile IMetadataPublisher[] _publishers = [];

    private MetadataLog(LogManager logs, PartitionLog log, ClusterImage image, TimeProvider time, int nodeId)
    {
        ActiveControllerId = nodeId;
        _logs = logs;
        _log = log;
        _image = image;
        _time = time;
    }

    /// <summary>The current state; a consistent snapshot that never changes under the reader.</summary>
    public ClusterImage Image => _image;

    /// <summary>The offset after the last metadata record (every record is durable before the image shows it).</summary>
    public long EndOffset => _log.LogEndOffset;

    /// <summary>A single node is always its own active controller.</summary>
    public bool IsActiveController => true;

    public int? ActiveControllerId { get; }

    /// <summary>
    /// A single node is the one voter and leader of its quorum, caught up now, in the epoch of the one election a new
    /// single-node KRaft quorum holds.
    /// </summary>
    public QuorumStatus Status()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var id = ActiveControllerId ?? -1;
        return new QuorumStatus(id, 1, EndOffset, [new VoterStatus(id, EndOffset, now, now)]);
    }

    /// <summary>Opens the metadata log in the log manager's data directory and replays it; node <paramref name="nodeId"/> is its controller.</summary>
    public static MetadataLog Open(LogManager logs, TimeProvider time, int nodeId = 1)
    {
        // Metadata is never deleted by time or size.
        var log = logs.GetOrCreate(Topic, 0, new LogConfig { RetentionMs = -1, RetentionBytes = -1, Delete = false });
        var image = ClusterImage.Empty;
        var offset = log.LogStartOffset;
        using var decompressed = new PooledBufferWriter();
        while (offset < log.LogEndOffset)
        {
            var read = log.Read(offset, 1 << 20);
            if (read.Region is null)
            {
                break;
            }

            var bytes = read.Region.Value.ToArray();
            foreach (var batch in RecordBatch.Enumerate(bytes))
            {
                foreach (var record in batch.GetRecords(decompressed))
                {
                    image = image.Apply(MetadataRecordCodec.Deserialize(record.Value.ToArray()), record.Offset);
                }

                offset = batch.Header.NextOffset;
            }
        }

        return new MetadataLog(logs, log, image, time, nodeId);
    }

    /// <inheritdoc/>
    public async Task<ClusterImage> AppendAsync(IReadOnlyList<IVersionedMessage> records, CancellationToken cancellationToken = default)
    {
        var (image, _) = await UpdateAsync(_ => (records, 0), cancellationToken).ConfigureAwait(false);
        return image;
    }

    /// <inheritdoc/>
    public void AddPublisher(IMetadataPublisher publisher)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        lock (_publishersLock)
        {
            // A write already publishing keeps the list it read; the publisher sees every later change.
            _publishers = [.. _publishers, publisher];
        }
    }

    /// <inheritdoc/>
    public async Task<(ClusterImage Image, T Result)> UpdateAsync<T>(
        Func<ClusterImage, (IReadOnlyList<IVersionedMessage> Records, T Result)> decide,
        CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (records, result) = decide(_image);
            if (records.Count == 0)
            {
                return (_image, result);
            }

            using var builder = new RecordBatchBuilder();
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var record in records)
            {
                builder.Append(now, null, MetadataRecordCodec.Serialize(record));
            }

            var appended = await _logs.AppendAsync(_log, builder.Build(), durable: true).ConfigureAwait(false);
            var before = _image;
            var image = before;
            for (var i = 0; i < records.Count; i++)
            {
                image = image.Apply(records[i], appended.FirstOffset + i);
            }

            _image = image;
            if (_publishers.Length > 0)
            {
                // Published in the writer's turn, so publishers see the changes one at a time and in log order. Not
                // cancellable: the records are durable, and a caller that gave up must not leave them half applied.
                var delta = MetadataDelta.Between(before, image);
                foreach (var publisher in _publishers)
                {
                    await publisher.PublishAsync(delta, CancellationToken.None).ConfigureAwait(false);
                }
            }

            return (image, result);
        }
        finally
        {
            _writer.Release();
        }
    }
}
