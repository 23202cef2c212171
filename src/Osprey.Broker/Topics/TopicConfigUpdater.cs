using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Topics;

/// <summary>
/// Changes a topic's config overrides: validates the result, writes ConfigRecords (a null value removes an
/// override) to the metadata log, and gives the topic's partition logs their new settings.
/// </summary>
public sealed class TopicConfigUpdater(MetadataLog metadata, LogManager logs)
{
    /// <summary>
    /// The Alter*Configs entry point: only topic resources (type 2) can be changed so far; anything else is
    /// INVALID_REQUEST with a message that says so.
    /// </summary>
    public Task<(ErrorCode Error, string? Message)> AlterAsync(
        sbyte resourceType,
        string resourceName,
        Func<IReadOnlyDictionary<string, string>, (Dictionary<string, string>? Result, string? Error)> change,
        bool validateOnly,
        CancellationToken cancellationToken) =>
        resourceType == ClusterImage.TopicResource
            ? UpdateAsync(resourceName, change, validateOnly, cancellationToken)
            : Task.FromResult<(ErrorCode, string?)>((ErrorCode.InvalidRequest, $"Altering resource type {resourceType} is not supported yet; topic configs (type 2) are."));

    /// <summary>
    /// Applies <paramref name="change"/> to the topic's current overrides. Returns the error to answer with, or
    /// (None, null) on success. With <paramref name="validateOnly"/> nothing is written.
    /// </summary>
    public async Task<(ErrorCode Error, string? Message)> UpdateAsync(
        string topicName,
        Func<IReadOnlyDictionary<string, string>, (Dictionary<string, string>? Result, string? Error)> change,
        bool validateOnly,
        CancellationToken cancellationToken)
    {
        var (image, outcome) = await metadata.UpdateAsync<(ErrorCode, string?)>(
            current =>
            {
                if (current.Topic(topicName) is not { } topic)
                {
                    return ([], (ErrorCode.UnknownTopicOrPartition, $"Topic {topicName} does not exist."));
                }

                var (result, error) = change(topic.Configs);
                if (result is null)
                {
                    return ([], (ErrorCode.InvalidConfig, error));
                }

                foreach (var (name, value) in result)
                {
                    if (TopicConfigs.Validate(name, value) is { } invalid)
                    {
                        return ([], (ErrorCode.InvalidConfig, invalid));
                    }
                }

                if (validateOnly)
                {
                    return ([], (ErrorCode.None, null));
                }

                var records = new List<IVersionedMessage>();
                foreach (var (name, value) in result)
                {
                    if (!topic.Configs.TryGetValue(name, out var old) || old != value)
                    {
                        records.Add(new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = topicName, Name = name, Value = value });
                    }
                }

                foreach (var name in topic.Configs.Keys.Where(n => !result.ContainsKey(n)))
                {
                    records.Add(new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = topicName, Name = name, Value = null });
                }

                return (records, (ErrorCode.None, null));
            },
            cancellationToken).ConfigureAwait(false);

        if (outcome.Item1 == ErrorCode.None && !validateOnly && image.Topic(topicName) is { } updated)
        {
            var config = TopicConfigs.ToLogConfig(updated.Configs);
            foreach (var partition in updated.Partitions.Keys)
            {
                if (logs.Get(topicName, partition) is { } log)
                {
                    log.Config = config;
                }
            }
        }

        return outcome;
    }
}
