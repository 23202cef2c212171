using System.Collections.Immutable;
using Osprey.Broker.Config;
using Osprey.Broker.Control;
using Osprey.Controller;
using Microsoft.Extensions.Logging;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Topics;

/// <summary>
/// Creates topics: validation (name, existence and '.'/'_' collisions, partitions, replication, assignments,
/// configs), then the TopicRecord/PartitionRecords/ConfigRecords in the metadata log (whose publisher opens the logs). Used by
/// CreateTopics and by Metadata's automatic creation.
/// </summary>
public sealed partial class TopicCreator(
    IMetadataQuorum metadata, BrokerOptions options, EffectiveConfigs configs, AdminForwarder forwarder, ImageWaiter images, ILogger<TopicCreator> logger)
{
    /// <summary>
    /// Creates a topic the broker itself needs (Metadata's automatic creation, the coordinators' internal topics): here
    /// on the active controller, else through it, answering once this node's image shows the topic. No active
    /// controller is NOT_CONTROLLER in <paramref name="result"/>.
    /// </summary>
    public async Task CreateOrForwardAsync(CreateTopicsRequest.CreatableTopic topic, CreateTopicsResponse.CreatableTopicResult result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentNullException.ThrowIfNull(result);
        try
        {
            if (!forwarder.ShouldForward)
            {
                await CreateAsync(topic, result, validateOnly: false, cancellationToken).ConfigureAwait(false);
                return;
            }

            var request = new CreateTopicsRequest { Topics = [topic], TimeoutMs = (int)AdminForwarder.Timeout.TotalMilliseconds };
            var answer = (await forwarder.ForwardAsync<CreateTopicsResponse>(request, 7, cancellationToken).ConfigureAwait(false)).Topics.FirstOrDefault(t => t.Name == topic.Name);
            (result.ErrorCode, result.ErrorMessage) = answer is null ? ((short)ErrorCode.UnknownServerError, "The controller did not answer for the topic.") : (answer.ErrorCode, answer.ErrorMessage);
            if (answer?.ErrorCode is 0 or (short)ErrorCode.TopicAlreadyExists)
            {
                await images.WaitAsync(image => image.Topic(topic.Name) is not null, AdminForwarder.CatchUpTimeout, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (NotControllerException e)
        {
            Fail(result, ErrorCode.NotController, e.Message);
        }
    }

    /// <summary>Creates (or with <paramref name="validateOnly"/> only checks) the topic; errors go into <paramref name="result"/>.</summary>
    public async Task CreateAsync(CreateTopicsRequest.CreatableTopic topic, CreateTopicsResponse.CreatableTopicResult result, bool validateOnly, CancellationToken cancellationToken)
    {
        var (image, created) = await metadata.UpdateAsync(
            current =>
            {
                var records = Plan(current, topic, result, validateOnly);
                return (records, records.Count > 0);
            },
            cancellationToken).ConfigureAwait(false);
        if (created)
        {
            // Its logs were opened by the metadata publisher before the update returned.
            var topicImage = image.Topic(topic.Name)!;
            LogCreated(logger, topic.Name, topicImage.Partitions.Count, MetaProperties.ToKafkaString(topicImage.TopicId), string.Join(", ", topicImage.Configs.Select(c => $"{c.Key}={c.Value}")));
        }
    }

    /// <summary>The records that create the topic, or none (with the error set on <paramref name="result"/>).</summary>
    private IReadOnlyList<IVersionedMessage> Plan(
        ClusterImage image, CreateTopicsRequest.CreatableTopic topic, CreateTopicsResponse.CreatableTopicResult result, bool validateOnly)
    {
        if (TopicNames.Validate(topic.Name) is { } invalid)
        {
            return Fail(result, ErrorCode.InvalidTopicException, invalid);
        }

        if (image.Topic(topic.Name) is not null)
        {
            return Fail(result, ErrorCode.TopicAlreadyExists, $"Topic '{topic.Name}' already exists.");
        }

        var collision = image.Topics.Keys.FirstOrDefault(t => TopicNames.CollisionKey(t) == TopicNames.CollisionKey(topic.Name));
        if (collision is not null)
        {
            return Fail(result, ErrorCode.InvalidTopicException, $"Topic '{topic.Name}' collides with existing topic: {collision}");
        }

        IReadOnlyList<IReadOnlyList<int>> assignment;
        if (topic.Assignments.Count > 0)
        {
            if (topic.NumPartitions != -1 || topic.ReplicationFactor != -1)
            {
                return Fail(result, ErrorCode.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.");
            }

            var ordered = topic.Assignments.OrderBy(a => a.PartitionIndex).ToList();
            if (ordered.Select((a, i) => a.PartitionIndex != i).Any(x => x))
            {
                return Fail(result, ErrorCode.InvalidReplicaAssignment, "Partitions in the replica assignment must be numbered from 0 without gaps.");
            }

            assignment = [.. ordered.Select(a => (IReadOnlyList<int>)a.BrokerIds)];
            if (PartitionAssigner.CheckManual(image, assignment) is { } invalidAssignment)
            {
                return Fail(result, ErrorCode.InvalidReplicaAssignment, invalidAssignment);
            }
        }
        else
        {
            var partitions = topic.NumPartitions == -1 ? options.NumPartitions : topic.NumPartitions;
            if (partitions <= 0)
            {
                return Fail(result, ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.");
            }

            var replication = topic.ReplicationFactor == -1 ? options.DefaultReplicationFactor : topic.ReplicationFactor;
            if (replication <= 0)
            {
                return Fail(result, ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0.");
            }

            var (placed, error, message) = PartitionAssigner.Place(image, partitions, replication, Random.Shared);
            if (placed is null)
            {
                return Fail(result, error, message!);
            }

            assignment = placed;
        }

        foreach (var config in topic.Configs)
        {
            if (TopicConfigs.Validate(config.Name, config.Value) is { } bad)
            {
                return Fail(result, ErrorCode.InvalidConfig, bad);
            }
        }

        result.NumPartitions = assignment.Count;
        result.ReplicationFactor = (short)assignment[0].Count;
        var id = Guid.NewGuid();
        result.TopicId = id;
        FillConfigs(image, topic, id, result);
        if (validateOnly)
        {
            return [];
        }

        var records = new List<IVersionedMessage> { new TopicRecord { Name = topic.Name, TopicId = id } };
        records.AddRange(assignment.Select((replicas, p) => PartitionAssigner.NewPartition(image, id, p, replicas)));
        records.AddRange(topic.Configs.Select(c => new ConfigRecord { ResourceType = ClusterImage.TopicResource, ResourceName = topic.Name, Name = c.Name, Value = c.Value }));
        return records;
    }

    /// <summary>
    /// Every topic config with the value the new topic gets and its source, sorted by name, as Kafka answers
    /// CreateTopics v5+ (Java's AdminClient reads the list unconditionally: a null one is a NullPointerException).
    /// </summary>
    private void FillConfigs(ClusterImage image, CreateTopicsRequest.CreatableTopic topic, Guid id, CreateTopicsResponse.CreatableTopicResult result)
    {
        var own = topic.Configs.ToImmutableSortedDictionary(c => c.Name, c => c.Value ?? string.Empty, StringComparer.Ordinal);
        var planned = new TopicImage(topic.Name, id, ImmutableSortedDictionary<int, PartitionImage>.Empty, own);
        result.Configs = [.. TopicConfigs.All.OrderBy(c => c.Definition.Name, StringComparer.Ordinal).Select(c =>
        {
            var (value, source, _) = configs.TopicValue(image, planned, c.Definition, c.ServerDefault);
            return new CreateTopicsResponse.CreatableTopicConfigs { Name = c.Definition.Name, Value = value, ReadOnly = false, ConfigSource = (sbyte)source, IsSensitive = false };
        })];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created topic {Topic}: {Partitions} partitions, id {TopicId}, configs [{Configs}]")]
    private static partial void LogCreated(ILogger logger, string topic, int partitions, string topicId, string configs);

    internal static IReadOnlyList<IVersionedMessage> Fail(CreateTopicsResponse.CreatableTopicResult result, ErrorCode code, string message)
    {
        result.ErrorCode = (short)code;
        result.ErrorMessage = message;
        return [];
    }
}
