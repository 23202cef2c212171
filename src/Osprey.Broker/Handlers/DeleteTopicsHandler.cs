// DeleteTopics (key 20), versions 1-6.
//   v1-5 name topics in TopicNames; v6 in Topics, by name or by id (UNKNOWN_TOPIC_ID for an unknown id).
//   A deleted topic is a RemoveTopicRecord in the metadata log; then its partition logs and directories go, and so
//   do the committed offsets every group had for it (a topic created again under the name starts with none).
//   Internal topics (names starting with "__") are refused with INVALID_TOPIC_EXCEPTION; with
//   delete.topic.enable=false every deletion is TOPIC_DELETION_DISABLED. A broker that is not the active
//   controller forwards the request and answers once its own metadata no longer has the deleted topics.
using Microsoft.Extensions.Logging;
using Osprey.Broker.Control;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed partial class DeleteTopicsHandler(IMetadataQuorum metadata, BrokerOptions options, AdminForwarder forwarder, ImageWaiter images, ILogger<DeleteTopicsHandler> logger) : RequestHandler<DeleteTopicsRequest, DeleteTopicsResponse>
{
    public override ApiKey ApiKey => ApiKey.DeleteTopics;

    public override short MinVersion => 1;

    public override short MaxVersion => 6;

    protected override async ValueTask<DeleteTopicsResponse> HandleAsync(RequestContext context, DeleteTopicsRequest request, CancellationToken cancellationToken)
    {
        if (forwarder.ShouldForward)
        {
            return await ForwardAsync(context, request, cancellationToken).ConfigureAwait(false);
        }

        var asked = context.ApiVersion >= 6
            ? request.Topics.Select(t => (t.Name, t.TopicId)).ToList()
            : request.TopicNames.Select(n => ((string?)n, Guid.Empty)).ToList();
        var response = new DeleteTopicsResponse();
        foreach (var (name, id) in asked)
        {
            var result = new DeleteTopicsResponse.DeletableTopicResult { Name = name, TopicId = context.ApiVersion >= 6 ? id : Guid.Empty };
            response.Responses.Add(result);
            if (!options.DeleteTopicEnable)
            {
                result.ErrorCode = (short)ErrorCode.TopicDeletionDisabled;
                result.ErrorMessage = "Topic deletion is disabled (delete.topic.enable=false).";
                continue;
            }

            TopicImage? deleted;
            try
            {
                deleted = await DeleteAsync(name, id, result, cancellationToken).ConfigureAwait(false);
            }
            catch (NotControllerException e)
            {
                result.ErrorCode = (short)ErrorCode.NotController;
                result.ErrorMessage = e.Message;
                continue;
            }

            if (deleted is not null)
            {
                result.Name = deleted.Name;
                if (context.ApiVersion >= 6)
                {
                    result.TopicId = deleted.TopicId;
                }

                // The metadata publishers have deleted its logs and the groups' offsets for it.
                LogDeleted(logger, deleted.Name, deleted.Partitions.Count, MetaProperties.ToKafkaString(deleted.TopicId), context.ClientId ?? "");
            }
        }

        return response;
    }

    private async Task<TopicImage?> DeleteAsync(string? name, Guid id, DeleteTopicsResponse.DeletableTopicResult result, CancellationToken cancellationToken)
    {
        var (_, deleted) = await metadata.UpdateAsync<TopicImage?>(
            image =>
            {
                var topic = name is not null ? image.Topic(name) : image.Topic(id);
                if (topic is null)
                {
                    result.ErrorCode = (short)(name is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                    return ([], null);
                }

                if (Topics.TopicNames.IsInternal(topic.Name))
                {
                    result.ErrorCode = (short)ErrorCode.InvalidTopicException;
                    result.ErrorMessage = $"Internal topic {topic.Name} cannot be deleted.";
                    return ([], null);
                }

                return ([new RemoveTopicRecord { TopicId = topic.TopicId }], topic);
            },
            cancellationToken).ConfigureAwait(false);
        return deleted;
    }

    private async Task<DeleteTopicsResponse> ForwardAsync(RequestContext context, DeleteTopicsRequest request, CancellationToken cancellationToken)
    {
        DeleteTopicsResponse response;
        try
        {
            response = await forwarder.ForwardAsync<DeleteTopicsResponse>(request, context.ApiVersion, cancellationToken).ConfigureAwait(false);
        }
        catch (NotControllerException e)
        {
            response = new DeleteTopicsResponse();
            var asked = context.ApiVersion >= 6 ? request.Topics.Select(t => (t.Name, t.TopicId)) : request.TopicNames.Select(n => ((string?)n, Guid.Empty));
            response.Responses.AddRange(asked.Select(t => new DeleteTopicsResponse.DeletableTopicResult
            {
                Name = t.Item1,
                TopicId = t.Item2,
                ErrorCode = (short)ErrorCode.NotController,
                ErrorMessage = e.Message,
            }));
            return response;
        }

        var deleted = response.Responses.Where(r => r.ErrorCode == 0 && r.Name is not null).Select(r => r.Name!).ToList();
        await images.WaitAsync(image => deleted.All(t => image.Topic(t) is null), AdminForwarder.CatchUpTimeout, cancellationToken).ConfigureAwait(false);
        return response;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted topic {Topic}: {Partitions} partitions, id {TopicId} (asked by client {ClientId})")]
    private static partial void LogDeleted(ILogger logger, string topic, int partitions, string topicId, string clientId);
}
