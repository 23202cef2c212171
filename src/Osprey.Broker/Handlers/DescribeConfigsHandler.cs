// DescribeConfigs (key 32), versions 1-4.
//   Topics (resource type 2): every topic config Osprey honours, with the topic's own value (source
//   DYNAMIC_TOPIC_CONFIG = 1) or Kafka's default (DEFAULT_CONFIG = 5); with IncludeSynonyms the topic value is
//   followed by the broker default property (e.g. log.retention.ms) as DEFAULT_CONFIG. ConfigurationKeys (when not
//   null) limits the answer. v3+ adds the config type. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   Brokers (resource type 4, this node's id or "" for the cluster default): the broker properties behind the topic
//   defaults plus the network and topic-creation settings, as DEFAULT_CONFIG or STATIC_BROKER_CONFIG.
//   Other resource types: INVALID_REQUEST.
using System.Globalization;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeConfigsHandler(MetadataLog metadata, BrokerIdentity identity, BrokerOptions options)
    : RequestHandler<DescribeConfigsRequest, DescribeConfigsResponse>
{
    public const sbyte TopicResource = 2;
    public const sbyte BrokerResource = 4;
    public const sbyte DynamicTopicConfig = 1;
    public const sbyte StaticBrokerConfig = 4;
    public const sbyte DefaultConfig = 5;

    public override ApiKey ApiKey => ApiKey.DescribeConfigs;

    public override short MinVersion => 1;

    public override short MaxVersion => 4;

    protected override ValueTask<DescribeConfigsResponse> HandleAsync(RequestContext context, DescribeConfigsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new DescribeConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName };
            response.Results.Add(result);
            var wanted = resource.ConfigurationKeys is { } keys ? new HashSet<string>(keys, StringComparer.Ordinal) : null;
            switch (resource.ResourceType)
            {
                case TopicResource when image.Topic(resource.ResourceName) is { } topic:
                    foreach (var definition in TopicConfigs.Definitions.Where(d => wanted?.Contains(d.Name) ?? true))
                    {
                        var overridden = topic.Configs.TryGetValue(definition.Name, out var value);
                        var entry = Entry(context, definition.Name, overridden ? value! : definition.Default, overridden ? DynamicTopicConfig : DefaultConfig, definition.Type);
                        if (request.IncludeSynonyms)
                        {
                            if (overridden)
                            {
                                entry.Synonyms.Add(new() { Name = definition.Name, Value = value, Source = DynamicTopicConfig });
                            }

                            entry.Synonyms.Add(new() { Name = definition.ServerDefaultProperty, Value = definition.Default, Source = DefaultConfig });
                        }

                        result.Configs.Add(entry);
                    }

                    break;
                case TopicResource:
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    result.ErrorMessage = $"Topic {resource.ResourceName} does not exist.";
                    break;
                case BrokerResource when resource.ResourceName.Length == 0 || resource.ResourceName == identity.NodeId.ToString(CultureInfo.InvariantCulture):
                    foreach (var (name, value, source, type) in BrokerConfigs().Where(c => wanted?.Contains(c.Name) ?? true))
                    {
                        var entry = Entry(context, name, value, source, type);
                        if (request.IncludeSynonyms)
                        {
                            entry.Synonyms.Add(new() { Name = name, Value = value, Source = source });
                        }

                        result.Configs.Add(entry);
                    }

                    break;
                case BrokerResource:
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = $"Broker {resource.ResourceName} is not this broker ({identity.NodeId}).";
                    break;
                default:
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = $"Resource type {resource.ResourceType} is not supported by DescribeConfigs here.";
                    break;
            }
        }

        return ValueTask.FromResult(response);
    }

    private static DescribeConfigsResponse.DescribeConfigsResourceResult Entry(RequestContext context, string name, string? value, sbyte source, ConfigType type) => new()
    {
        Name = name,
        Value = value,
        ReadOnly = false,
        ConfigSource = source,
        IsSensitive = false,
        ConfigType = context.ApiVersion >= 3 ? (sbyte)type : (sbyte)0,
        Documentation = null,
    };

    private IEnumerable<(string Name, string Value, sbyte Source, ConfigType Type)> BrokerConfigs()
    {
        foreach (var definition in TopicConfigs.Definitions)
        {
            yield return (definition.ServerDefaultProperty, definition.Default, DefaultConfig, definition.Type);
        }

        yield return ("node.id", identity.NodeId.ToString(CultureInfo.InvariantCulture), StaticBrokerConfig, ConfigType.Int);
        yield return ("auto.create.topics.enable", options.AutoCreateTopics ? "true" : "false", options.AutoCreateTopics ? DefaultConfig : StaticBrokerConfig, ConfigType.Boolean);
        yield return ("num.partitions", options.NumPartitions.ToString(CultureInfo.InvariantCulture), options.NumPartitions == 1 ? DefaultConfig : StaticBrokerConfig, ConfigType.Int);
        yield return ("socket.request.max.bytes", options.SocketRequestMaxBytes.ToString(CultureInfo.InvariantCulture), options.SocketRequestMaxBytes == 104_857_600 ? DefaultConfig : StaticBrokerConfig, ConfigType.Int);
        yield return ("connections.max.idle.ms", options.ConnectionsMaxIdleMs.ToString(CultureInfo.InvariantCulture), options.ConnectionsMaxIdleMs == 600_000 ? DefaultConfig : StaticBrokerConfig, ConfigType.Long);
    }
}
