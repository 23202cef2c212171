using Osprey.Metadata;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>Keeps a topic's partition logs in step with its image: opened (or created) with its configs.</summary>
public static class TopicLogs
{
    public static void Open(LogManager logs, TopicImage topic)
    {
        var config = TopicConfigs.ToLogConfig(topic.Configs);
        foreach (var partition in topic.Partitions.Keys)
        {
            logs.GetOrCreate(topic.Name, partition, config);
        }
    }
}
