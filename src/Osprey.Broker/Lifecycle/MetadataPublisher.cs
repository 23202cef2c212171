using System.Globalization;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Storage;

namespace Osprey.Broker.Lifecycle;

/// <summary>
/// Keeps this node's partition logs in step with the metadata: a deleted topic's logs go, a created topic or added
/// partitions get logs opened with the configs in force, and changed topic overrides or broker defaults reach the
/// open logs. Handlers only write records; whatever a change means on disk happens here, so it happens the same
/// way whichever node (or, in a cluster, which controller) wrote the change.
/// </summary>
public sealed class MetadataPublisher(TopicLogs topicLogs, LogManager logs, int nodeId) : IMetadataPublisher
{
    private readonly string _nodeResource = nodeId.ToString(CultureInfo.InvariantCulture);

    public ValueTask PublishAsync(MetadataDelta delta, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delta);
        var image = delta.After;
        foreach (var topic in delta.DeletedTopics)
        {
            foreach (var partition in topic.Partitions.Keys)
            {
                logs.Delete(topic.Name, partition);
            }
        }

        // New topics and partitions added to existing ones.
        foreach (var topicId in delta.ChangedPartitions.Where(p => p.Before is null).Select(p => p.TopicId).Distinct())
        {
            if (image.Topic(topicId) is { } topic)
            {
                topicLogs.Open(image, topic);
            }
        }

        // A broker default reaches every topic that does not override it.
        if (delta.ChangedBrokerConfigs.Any(name => name.Length == 0 || name == _nodeResource))
        {
            topicLogs.Refresh(image, image.Topics.Values);
        }
        else if (!delta.ChangedTopicConfigs.IsEmpty)
        {
            topicLogs.Refresh(image, delta.ChangedTopicConfigs.Select(name => image.Topic(name)).OfType<TopicImage>());
        }

        return ValueTask.CompletedTask;
    }
}
