// DescribeConfigs (key 32), versions 1-4.
//   Topics (resource type 2): every topic config, with the value in force and its source: the topic's own
//   (DYNAMIC_TOPIC_CONFIG), a dynamic broker default for this node or the cluster (DYNAMIC_BROKER_CONFIG,
//   DYNAMIC_DEFAULT_BROKER_CONFIG), the static broker setting (STATIC_BROKER_CONFIG) or Kafka's default
//   (DEFAULT_CONFIG). IncludeSynonyms lists every source in precedence order, under the broker property's name
//   (log.retention.ms, then .minutes and .hours). ConfigurationKeys (unless null or empty) limits the answer. v3+ adds the
//   config type. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   Brokers (resource type 4): this node's id gives every broker setting Kafka has (about 290, with Kafka's defaults
//   where Osprey has no use for one) and Osprey's own, the ones that cannot change while running read-only;
//   "" gives the cluster-wide dynamic defaults that are set. Another broker id or resource type: INVALID_REQUEST.
using System.Globalization;
using Osprey.Broker.Config;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeConfigsHandler(IMetadataQuorum metadata, BrokerIdentity identity, BrokerOptions options, EffectiveConfigs configs)
    : RequestHandler<DescribeConfigsRequest, DescribeConfigsResponse>
{
    public const sbyte TopicResource = 2;
    public const sbyte BrokerResource = 4;

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
            var wanted = resource.ConfigurationKeys is { Count: > 0 } keys ? new HashSet<string>(keys, StringComparer.Ordinal) : null;
            switch (resource.ResourceType)
            {
                case TopicResource when image.Topic(resource.ResourceName) is { } topic:
                    foreach (var (definition, serverDefault) in TopicConfigs.All.Where(d => wanted?.Contains(d.Definition.Name) ?? true))
                    {
                        var (value, source, synonyms) = configs.TopicValue(image, topic, definition, serverDefault);
                        result.Configs.Add(Entry(context, request, definition, value, source, synonyms, readOnly: false));
                    }

                    break;
                case TopicResource:
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    result.ErrorMessage = $"Topic {resource.ResourceName} does not exist.";
                    break;
                case BrokerResource when resource.ResourceName.Length == 0:
                    foreach (var (name, value) in image.BrokerConfigsOf("").Where(c => wanted?.Contains(c.Key) ?? true))
                    {
                        var definition = BrokerSettings.Find(name) ?? new ConfigDefinition(name, ConfigType.Unknown, null);
                        result.Configs.Add(Entry(context, request, definition, value, ConfigSource.DynamicDefaultBroker, [new(name, value, ConfigSource.DynamicDefaultBroker)], readOnly: false));
                    }

                    break;
                case BrokerResource when resource.ResourceName == identity.NodeId.ToString(CultureInfo.InvariantCulture):
                    foreach (var name in BrokerSettings.All.Keys.Union(KafkaBrokerConfigs.All.Keys).Order(StringComparer.Ordinal).Where(n => wanted?.Contains(n) ?? true))
                    {
                        result.Configs.Add(BrokerEntry(context, request, image, name));
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

    /// <summary>
    /// One broker setting: those Osprey honours with the value in force and its source; every other setting Kafka
    /// has with the value the config gave it (accepted and ignored) or Kafka's default, read-only, passwords without
    /// their value. broker.id is node.id, as Kafka copies it.
    /// </summary>
    private DescribeConfigsResponse.DescribeConfigsResourceResult BrokerEntry(RequestContext context, DescribeConfigsRequest request, ClusterImage image, string name)
    {
        if (BrokerSettings.Find(name) is { } definition)
        {
            var synonyms = configs.BrokerSynonyms(image, name is "broker.id" ? "node.id" : name);
            var source = synonyms.FirstOrDefault().Source;
            var value = name switch
            {
                "node.id" or "broker.id" => identity.NodeId.ToString(CultureInfo.InvariantCulture),
                "log.dirs" => Path.GetFullPath(options.DataDirectory),
                _ => configs.BrokerValue(image, name),
            };
            if (name == "broker.id")
            {
                synonyms = [.. synonyms.Where(s => s.Source != ConfigSource.Default).Select(s => s with { Name = name }), new(name, definition.Default, ConfigSource.Default)];
            }

            return Entry(context, request, definition, value, source == ConfigSource.Unknown ? ConfigSource.Default : source, synonyms, readOnly: !definition.Dynamic);
        }

        var kafka = KafkaBrokerConfigs.Find(name)!;
        var given = options.Config.Unused.TryGetValue(name, out var set);
        List<ConfigSynonym> kafkaSynonyms = given ? [new(name, set, ConfigSource.StaticBroker)] : [];
        if (kafka.Default is not null)
        {
            kafkaSynonyms.Add(new(name, kafka.Default, ConfigSource.Default));
        }

        var entry = Entry(context, request, new ConfigDefinition(name, ConfigType.Unknown, kafka.Default), given ? set : kafka.Default, given ? ConfigSource.StaticBroker : ConfigSource.Default, kafkaSynonyms, readOnly: true);
        entry.ConfigType = context.ApiVersion >= 3 ? kafka.TypeId : (sbyte)0;
        if (kafka.Sensitive)
        {
            entry.Value = null;
            entry.IsSensitive = true;
            entry.Synonyms.ForEach(s => s.Value = null);
        }

        return entry;
    }

    private static DescribeConfigsResponse.DescribeConfigsResourceResult Entry(
        RequestContext context, DescribeConfigsRequest request, ConfigDefinition definition, string? value, ConfigSource source, List<ConfigSynonym> synonyms, bool readOnly)
    {
        var entry = new DescribeConfigsResponse.DescribeConfigsResourceResult
        {
            Name = definition.Name,
            Value = value,
            ReadOnly = readOnly,
            ConfigSource = (sbyte)source,
            IsSensitive = false,
            ConfigType = context.ApiVersion >= 3 ? (sbyte)definition.Type : (sbyte)0,
            Documentation = null,
        };
        if (request.IncludeSynonyms)
        {
            entry.Synonyms.AddRange(synonyms.Select(s => new DescribeConfigsResponse.DescribeConfigsSynonym { Name = s.Name, Value = s.Value, Source = (sbyte)s.Source }));
        }

        return entry;
    }
}
