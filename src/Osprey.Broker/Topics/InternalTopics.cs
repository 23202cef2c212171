using System.Globalization;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Records;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>Sees one record of an internal topic as it is replayed, with the header of its batch.</summary>
public delegate void InternalRecordVisitor(RecordBatchHeader batch, Record record);

/// <summary>
/// What the coordinators' internal compacted topics (__consumer_offsets, __transaction_state) share: creation on
/// first use, and replay of a partition's records when a coordinator loads it.
/// </summary>
public static class InternalTopics
{
    public const string TransactionLogTopic = "__transaction_state";

    /// <summary>
    /// Creates a compacted internal topic with <paramref name="replicationFactor"/> replicas and, when given, min.insync.replicas
    /// <paramref name="minInsyncReplicas"/> (capped at the replicas), through the active controller; null when it was
    /// created or already exists, else the error message.
    /// </summary>
    public static async Task<string?> CreateAsync(TopicCreator creator, string name, int partitions, int segmentBytes, short replicationFactor, int? minInsyncReplicas, CancellationToken cancellationToken)
    {
        var result = new CreateTopicsResponse.CreatableTopicResult { Name = name };
        await creator.CreateOrForwardAsync(
            new CreateTopicsRequest.CreatableTopic
            {
                Name = name,
                NumPartitions = partitions,
                ReplicationFactor = replicationFactor,
                Configs =
                [
                    new() { Name = "cleanup.policy", Value = "compact" },
                    new() { Name = "segment.bytes", Value = segmentBytes.ToString(CultureInfo.InvariantCulture) },

                    // As Kafka sets them: the transaction log is never compressed and never elects an unclean leader.
                    .. name == TransactionLogTopic
                        ? new CreateTopicsRequest.CreatableTopicConfig[] { new() { Name = "compression.type", Value = "uncompressed" }, new() { Name = "unclean.leader.election.enable", Value = "false" } }
                        : [new() { Name = "compression.type", Value = "producer" }],
                    .. minInsyncReplicas is { } minIsr
                        ? new CreateTopicsRequest.CreatableTopicConfig[] { new() { Name = "min.insync.replicas", Value = Math.Min(minIsr, replicationFactor).ToString(CultureInfo.InvariantCulture) } }
                        : [],
                ],
            },
            result,
            cancellationToken).ConfigureAwait(false);
        return result.ErrorCode is 0 or (short)Protocol.ErrorCode.TopicAlreadyExists ? null : result.ErrorMessage ?? $"error {result.ErrorCode}";
    }

    /// <summary>
    /// Replays every record of <paramref name="log"/> from its start, control batches included (as batches with no
    /// records seen). A batch whose CRC does not match or whose records cannot be read (damage on disk the log kept
    /// rather than cut) is passed to <paramref name="skipped"/> with the reason and left out whole, so a coordinator
    /// never loads half a batch or garbage, and the batches after it still load.
    /// </summary>
    public static void Replay(PartitionLog log, InternalRecordVisitor visit, Action<RecordBatchHeader, RecordBatch>? control = null, Action<RecordBatchHeader, string>? skipped = null)
    {
        var offset = log.LogStartOffset;
        using var decompressed = new PooledBufferWriter(0);
        while (offset < log.LogEndOffset)
        {
            var read = log.Read(offset, 1 << 20);
            if (read.Region is not { } region)
            {
                break;
            }

            var bytes = region.ToArray();
            foreach (var batch in RecordBatch.Enumerate(bytes))
            {
                offset = batch.Header.NextOffset;
                if (Unreadable(batch, decompressed) is { } why)
                {
                    skipped?.Invoke(batch.Header, why);
                    continue;
                }

                if (batch.Header.IsControlBatch)
                {
                    control?.Invoke(batch.Header, batch);
                    continue;
                }

                foreach (var record in batch.GetRecords(decompressed))
                {
                    visit(batch.Header, record);
                }
            }
        }
    }

    /// <summary>Why the batch cannot be replayed, or null when its CRC holds and all its records read.</summary>
    private static string? Unreadable(RecordBatch batch, PooledBufferWriter decompressed)
    {
        if (!batch.VerifyCrc())
        {
            return "its CRC does not match (damaged on disk)";
        }

        try
        {
            var count = 0;
            foreach (var _ in batch.GetRecords(decompressed))
            {
                count++;
            }

            return count == batch.Header.RecordCount ? null : $"it holds {count} records where its header says {batch.Header.RecordCount}";
        }
        catch (Exception e) when (e is KafkaProtocolException or InvalidDataException)
        {
            return e.Message;
        }
    }
}
