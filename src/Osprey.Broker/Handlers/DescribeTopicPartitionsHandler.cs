// DescribeTopicPartitions (key 75), version 0 (KIP-966).
//   The topics named (all of them when the list is empty), sorted by name, with their partitions' leader, epoch,
//   replicas and ISR; eligible leader replicas are empty on a single node. At most ResponsePartitionLimit
//   partitions (capped at 2000, max.request.partition.size.limit) are returned; when more remain, NextCursor
//   names the topic and partition to continue from. A cursor starts the answer at its topic and partition; a
//   cursor naming a topic outside the requested ones puts INVALID_REQUEST on every topic. Unknown topics: UNKNOWN_TOPIC_OR_PARTITION.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeTopicPartitionsHandler(IMetadataQuorum metadata) : RequestHandler<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>
{
    public const int MaxPartitionLimit = 2000;

    public override ApiKey ApiKey => ApiKey.DescribeTopicPartitions;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override ValueTask<DescribeTopicPartitionsResponse> HandleAsync(RequestContext context, DescribeTopicPartitionsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new DescribeTopicPartitionsResponse();
        var names = request.Topics.Count == 0
            ? [.. image.Topics.Keys]
            : request.Topics.Select(t => t.Name).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var cursor = request.Cursor;
        if (cursor is not null && (!names.Contains(cursor.TopicName, StringComparer.Ordinal) || cursor.PartitionIndex < 0))
        {
            // Like Kafka, a bad request is answered with the error on every topic it names.
            response.Topics.AddRange(names.Select(n => new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic { Name = n, ErrorCode = (short)ErrorCode.InvalidRequest }));
            return ValueTask.FromResult(response);
        }

        var remaining = Math.Clamp(request.ResponsePartitionLimit, 1, MaxPartitionLimit);
        foreach (var name in names.SkipWhile(n => cursor is not null && string.CompareOrdinal(n, cursor.TopicName) < 0))
        {
            if (image.Topic(name) is not { } topic)
            {
                response.Topics.Add(new() { Name = name, ErrorCode = (short)ErrorCode.UnknownTopicOrPartition });
                continue;
            }

            if (remaining == 0)
            {
                response.NextCursor = new() { TopicName = name, PartitionIndex = 0 };
                break;
            }

            var first = cursor is not null && cursor.TopicName == name ? cursor.PartitionIndex : 0;
            var described = new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
            {
                Name = name,
                TopicId = topic.TopicId,
                IsInternal = Topics.TopicNames.IsInternal(name),
            };
            response.Topics.Add(described);
            foreach (var partition in topic.Partitions.Values.Where(p => p.PartitionId >= first))
            {
                if (remaining == 0)
                {
                    response.NextCursor = new() { TopicName = name, PartitionIndex = partition.PartitionId };
                    break;
                }

                described.Partitions.Add(new()
                {
                    PartitionIndex = partition.PartitionId,
                    LeaderId = partition.Leader,
                    LeaderEpoch = partition.LeaderEpoch,
                    ReplicaNodes = [.. partition.Replicas],
                    IsrNodes = [.. partition.Isr],
                    EligibleLeaderReplicas = [],
                    LastKnownElr = [],
                });
                remaining--;
            }

            if (response.NextCursor is not null)
            {
                break;
            }
        }

        return ValueTask.FromResult(response);
    }
}
