// CreateTopics (key 19), versions 2-7.
//   Per topic: legal name, not existing (also not colliding on '.' vs '_'), partitions ≥ 1 (-1: num.partitions),
//   replication factor ≥ 1 (-1: default.replication.factor) and no more than the usable brokers
//   (INVALID_REPLICATION_FACTOR), replicas placed rack-aware or assigned by hand onto registered brokers
//   (INVALID_REPLICA_ASSIGNMENT), configs known and valid. ValidateOnly checks without creating.
//   A broker that is not the active controller forwards the request to it and answers once its own metadata shows
//   the created topics; the controller's listener decides, or answers NOT_CONTROLLER when it is not the active one.
//   v5+: the response carries partitions and replication factor; v7: the topic id.
//   A created topic is a TopicRecord, PartitionRecords and ConfigRecords in the metadata log, then its logs.
using Osprey.Broker.Control;
using Osprey.Broker.Topics;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class CreateTopicsHandler(TopicCreator creator, AdminForwarder forwarder, ImageWaiter images)
    : RequestHandler<CreateTopicsRequest, CreateTopicsResponse>
{
    public override ApiKey ApiKey => ApiKey.CreateTopics;

    public override short MinVersion => 2;

    public override short MaxVersion => 7;

    protected override async ValueTask<CreateTopicsResponse> HandleAsync(RequestContext context, CreateTopicsRequest request, CancellationToken cancellationToken)
    {
        if (forwarder.ShouldForward)
        {
            return await ForwardAsync(context, request, cancellationToken).ConfigureAwait(false);
        }

        var response = new CreateTopicsResponse();
        var duplicates = request.Topics.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var topic in request.Topics)
        {
            var result = new CreateTopicsResponse.CreatableTopicResult { Name = topic.Name, ErrorMessage = null };
            response.Topics.Add(result);
            if (duplicates.Contains(topic.Name))
            {
                TopicCreator.Fail(result, ErrorCode.InvalidRequest, $"Create topics request from client `{context.ClientId}` contains multiple entries for the following topics: {topic.Name}");
                continue;
            }

            try
            {
                await creator.CreateAsync(topic, result, request.ValidateOnly, cancellationToken).ConfigureAwait(false);
            }
            catch (NotControllerException e)
            {
                TopicCreator.Fail(result, ErrorCode.NotController, e.Message);
            }
        }

        return response;
    }

    private async Task<CreateTopicsResponse> ForwardAsync(RequestContext context, CreateTopicsRequest request, CancellationToken cancellationToken)
    {
        CreateTopicsResponse response;
        try
        {
            response = await forwarder.ForwardAsync<CreateTopicsResponse>(request, context.ApiVersion, cancellationToken).ConfigureAwait(false);
        }
        catch (NotControllerException e)
        {
            response = new CreateTopicsResponse();
            foreach (var topic in request.Topics)
            {
                var result = new CreateTopicsResponse.CreatableTopicResult { Name = topic.Name };
                TopicCreator.Fail(result, ErrorCode.NotController, e.Message);
                response.Topics.Add(result);
            }

            return response;
        }

        if (!request.ValidateOnly)
        {
            var created = response.Topics.Where(t => t.ErrorCode == 0).Select(t => t.Name).ToList();
            await images.WaitAsync(image => created.All(t => image.Topic(t) is not null), AdminForwarder.CatchUpTimeout, cancellationToken).ConfigureAwait(false);
        }

        return response;
    }
}
