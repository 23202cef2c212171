using System.Globalization;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Config;

/// <summary>
/// Changes config overrides: a topic's, or the dynamic broker configs of this node (resource name = its id) or of
/// the whole cluster (resource name ""). Validates the result and writes ConfigRecords (a null value removes an
/// override) to the metadata log; its publisher gives the affected partition logs their new settings.
/// </summary>
public sealed class ConfigUpdater(IMetadataQuorum metadata, BrokerIdentity identity)
{
    /// <summary>The definition of a config of a resource type, or null when there is no such config.</summary>
    public static ConfigDefinition? Find(sbyte resourceType, string name) =>
        resourceType == ClusterImage.BrokerResource ? BrokerSettings.Find(name) : TopicConfigs.Find(name);

    /// <summary>
    /// Applies <paramref name="change"/> to the resource's current overrides. Returns the error to answer with, or
    /// (None, null) on success. With <paramref name="validateOnly"/> nothing is written.
    /// </summary>
    public async Task<(ErrorCode Error, string? Message)> AlterAsync(
        sbyte resourceType,
        string resourceName,
        Func<IReadOnlyDictionary<string, string>, (Dictionary<string, string>? Result, (ErrorCode Code, string Message)? Error)> change,
        bool validateOnly,
        CancellationToken cancellationToken)
    {
        if (resourceType is not (ClusterImage.TopicResource or ClusterImage.BrokerResource))
        {
            return (ErrorCode.InvalidRequest, $"Unknown resource type {resourceType}");
        }

        if (resourceType == ClusterImage.BrokerResource && resourceName.Length > 0 && !int.TryParse(resourceName, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            return (ErrorCode.InvalidRequest, $"Invalid broker name {resourceName}");
        }

        try
        {
            return await UpdateAsync(resourceType, resourceName, change, validateOnly, cancellationToken).ConfigureAwait(false);
        }
        catch (NotControllerException e)
        {
            return (ErrorCode.NotController, e.Message);
        }
    }

    /// <summary>
    /// A broker that receives a change of one broker's configs checks that it is about itself (clients send such a
    /// change to the broker it names) before it is carried out or forwarded: null when it is, else the error.
    /// </summary>
    public (ErrorCode Error, string Message)? CheckAddressedBroker(sbyte resourceType, string resourceName) =>
        resourceType == ClusterImage.BrokerResource && resourceName.Length > 0 && resourceName != identity.NodeId.ToString(CultureInfo.InvariantCulture)
            ? (ErrorCode.InvalidRequest, $"Unexpected broker id, expected {identity.NodeId}, but received {resourceName}")
            : null;

    private async Task<(ErrorCode Error, string? Message)> UpdateAsync(
        sbyte resourceType,
        string resourceName,
        Func<IReadOnlyDictionary<string, string>, (Dictionary<string, string>? Result, (ErrorCode Code, string Message)? Error)> change,
        bool validateOnly,
        CancellationToken cancellationToken)
    {
        var (_, outcome) = await metadata.UpdateAsync<(ErrorCode, string?)>(
            current =>
            {
                IReadOnlyDictionary<string, string> existing;
                if (resourceType == ClusterImage.TopicResource)
                {
                    if (current.Topic(resourceName) is not { } topic)
                    {
                        return ([], (ErrorCode.UnknownTopicOrPartition, $"The topic '{resourceName}' does not exist."));
                    }

                    existing = topic.Configs;
                }
                else
                {
                    existing = current.BrokerConfigsOf(resourceName);
                }

                var (result, error) = change(existing);
                if (result is null)
                {
                    return ([], error ?? (ErrorCode.InvalidConfig, "Invalid config change."));
                }

                foreach (var (name, value) in result)
                {
                    if (Validate(resourceType, name, value) is { } invalid)
                    {
                        return ([], (resourceType == ClusterImage.TopicResource ? ErrorCode.InvalidConfig : ErrorCode.InvalidRequest, invalid));
                    }
                }

                if (validateOnly)
                {
                    return ([], (ErrorCode.None, null));
                }

                var records = new List<IVersionedMessage>();
                foreach (var (name, value) in result)
                {
                    if (!existing.TryGetValue(name, out var old) || old != value)
                    {
                        records.Add(new ConfigRecord { ResourceType = resourceType, ResourceName = resourceName, Name = name, Value = value });
                    }
                }

                foreach (var name in existing.Keys.Where(n => !result.ContainsKey(n)))
                {
                    records.Add(new ConfigRecord { ResourceType = resourceType, ResourceName = resourceName, Name = name, Value = null });
                }

                return (records, (ErrorCode.None, null));
            },
            cancellationToken).ConfigureAwait(false);

        // The metadata publisher gives the affected logs their new settings.
        return outcome;
    }

    private static string? Validate(sbyte resourceType, string name, string value)
    {
        if (resourceType == ClusterImage.TopicResource)
        {
            return TopicConfigs.Validate(name, value);
        }

        return BrokerSettings.Find(name) switch
        {
            null => $"Unknown broker config name: {name}",
            { Dynamic: false } => $"Cannot update these configs dynamically: Set({name})",
            var definition => definition.Validate(value),
        };
    }
}
