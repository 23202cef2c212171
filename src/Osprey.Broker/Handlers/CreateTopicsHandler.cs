// CreateTopics (key 19), versions 2-7.
//   Per topic: legal name, not existing (also not colliding on '.' vs '_'), partitions ≥ 1 (-1: num.partitions),
//   replication factor 1 on a single node (-1: default; > 1 is INVALID_REPLICATION_FACTOR), manual assignments
//   only onto this node, configs known and valid. ValidateOnly checks without creating.
//   v5+: the response carries partitions and replication factor; v7: the topic id.
//   A created topic is a TopicRecord, PartitionRecords and ConfigRecords in the metadata log, then its logs.
using Osprey.Broker.Topics;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class CreateTopicsHandler(TopicCreator creator)
    : RequestHandler<CreateTopicsRequest, CreateTopicsResponse>
{
    public override ApiKey ApiKey => ApiKey.CreateTopics;

    public override short MinVersion => 2;

    public override short MaxVersion => 7;

    protected override async ValueTask<CreateTopicsResponse> HandleAsync(RequestContext context, CreateTopicsRequest request, CancellationToken cancellationToken)
    {
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

            await creator.CreateAsync(topic, result, request.ValidateOnly, cancellationToken).ConfigureAwait(false);
        }

        return response;
    }
}
