using Osprey.Broker.Config;
using Osprey.Metadata;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>
/// Keeps this node's partition logs in step with the metadata image: the partitions it holds a replica of are opened
/// (or created) with the configs in force, and given new settings when a topic's overrides or the broker's defaults
/// change. A partition whose replicas are all on other brokers has no log here.
/// </summary>
public sealed class TopicLogs(LogManager logs, EffectiveConfigs configs, int nodeId)
{
    public void Open(ClusterImage image, TopicImage topic)
    {
        var config = configs.LogConfigFor(image, topic);
        foreach (var (index, partition) in topic.Partitions)
        {
            if (partition.Replicas.Contains(nodeId))
            {
                logs.GetOrCreate(topic.Name, index, config);
            }
        }
    }

    /// <summary>Gives the open logs of <paramref name="topics"/> the settings <paramref name="image"/> puts in force.</summary>
    public void Refresh(ClusterImage image, IEnumerable<TopicImage> topics)
    {
        foreach (var topic in topics)
        {
            var config = configs.LogConfigFor(image, topic);
            foreach (var partition in topic.Partitions.Keys)
            {
                if (logs.Get(topic.Name, partition) is { } log)
                {
                    log.Config = config;
                }
            }
        }
    }
}
